"""Who may call the management routes (beyond MindSpore, whose REST plane is open to anyone who reaches it).

Configured from the scheduler's environment, never from the YAML:
- `MINDFED_OPERATOR_TOKEN` or `MINDFED_OPERATOR_TOKEN_FILE` (one of them): every management route wants
  `Authorization: Bearer <token>`, compared in constant time;
- `MINDFED_OPERATOR_CA_FILE`: a request whose TLS client certificate this CA verified passes too (mutual TLS; needs
  the scheduler to serve HTTPS, see `request_client_certificates`);
- `MINDFED_STATE_PUBLIC=1`: `/state` (and the dashboard's read of the same state) stays readable without either;
- `MINDFED_METRICS_PRIVATE=1`: `/metrics` wants the credential too (it is open by default, as Prometheus scrapes;
  `/healthz` and `/readyz` always are, for probes that send none; none of them carries a secret).
With none of them set, everything is open exactly as in MindSpore. A refusal is HTTP 401 with the scheduler's error
body `{"code":"1","error_message":...}`.
"""

from __future__ import annotations

import hmac
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from mindfed.errors import ConfigError

logger = logging.getLogger(__name__)

TOKEN_ENV = "MINDFED_OPERATOR_TOKEN"
TOKEN_FILE_ENV = "MINDFED_OPERATOR_TOKEN_FILE"
CA_FILE_ENV = "MINDFED_OPERATOR_CA_FILE"
STATE_PUBLIC_ENV = "MINDFED_STATE_PUBLIC"
METRICS_PRIVATE_ENV = "MINDFED_METRICS_PRIVATE"
REFUSED = ("Operator authentication required: send 'Authorization: Bearer <token>' (MINDFED_OPERATOR_TOKEN) or a "
           "client certificate")


@dataclass(frozen=True, slots=True)
class OperatorAuth:
    """What the management routes accept.

    Attributes:
        token: the bearer token; "" = none (kept out of the repr).
        client_ca_file: the CA that verifies operators' client certificates; "" = none.
        state_public: `/state` needs no credential.
        metrics_private: `/metrics` needs the credential.
    """

    token: str = field(default="", repr=False)
    client_ca_file: str = ""
    state_public: bool = False
    metrics_private: bool = False  # `/metrics` behind the credential (when one is configured)

    @property
    def enabled(self) -> bool:
        return bool(self.token or self.client_ca_file)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorAuth:
        """The settings of the module docstring.

        Raises:
            ConfigError: both token variables, an unreadable or empty token file, an empty token, a missing CA file.
        """
        token, path = env.get(TOKEN_ENV), env.get(TOKEN_FILE_ENV)
        if token is not None and path is not None:
            raise ConfigError(f"set one of {TOKEN_ENV} and {TOKEN_FILE_ENV}, not both")
        if path is not None:
            try:
                token = Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{TOKEN_FILE_ENV}: cannot read {path!r} ({exc.__class__.__name__})") from None
        if token is not None and not token.strip():
            raise ConfigError(f"{TOKEN_FILE_ENV if path else TOKEN_ENV} holds an empty operator token")
        ca = env.get(CA_FILE_ENV, "")
        if ca and not Path(ca).is_file():
            raise ConfigError(f"{CA_FILE_ENV}: {ca!r} is not a readable file")
        return cls(token=(token or "").strip(), client_ca_file=ca,
                   state_public=_flag(env, STATE_PUBLIC_ENV), metrics_private=_flag(env, METRICS_PRIVATE_ENV))

    def allows(self, request: web.Request, *, reads_state: bool = False) -> bool:
        """True when `request` may call its route; `reads_state`: the route reads the cluster state (/state, the
        dashboard's overview), which `state_public` opens."""
        if not self.enabled or (self.state_public and reads_state):
            return True
        if self.token:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), self.token.encode()):
                return True
        # a peer certificate is reported only once the handshake verified it against the context's CA
        return bool(self.client_ca_file and request.transport is not None
                    and request.transport.get_extra_info("peercert"))


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes")


def request_client_certificates(context: ssl.SSLContext, auth: OperatorAuth) -> None:
    """Make the scheduler's HTTPS context ask for (but not require) client certificates from `auth`'s CA, so an
    operator can authenticate with one while a token client still connects. A no-op without a CA file."""
    if auth.client_ca_file:
        context.load_verify_locations(cafile=auth.client_ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL


def operator_headers(env: Mapping[str, str]) -> dict[str, str]:
    """The header an operator tool sends to the scheduler: the token of `env` (as `from_env` reads it), if any."""
    token = OperatorAuth.from_env({k: v for k, v in env.items() if k in (TOKEN_ENV, TOKEN_FILE_ENV)}).token
    return {"Authorization": f"Bearer {token}"} if token else {}
