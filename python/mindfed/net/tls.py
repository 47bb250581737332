"""Mutual TLS for the node-to-node transport: the YAML's `ssl:` section and the two p12 passwords as the
`_core.net.TlsOptions` a `TcpEndpoint` is opened with.

The listening side presents `ssl.server_cert_path` (server.p12), the connecting side `ssl.client_cert_path`
(client.p12); both require the peer's certificate to chain to `ssl.ca_cert_path` and, with `ssl.crl_path`, not to be
revoked in it. The passwords come from `ServerOptions` (flag, environment or the job API's `SSLConfig`), never from
the YAML, and are never logged. `node_tls_target` makes the endpoint's material replaceable at run time (rotation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindfed import _core
from mindfed.config.schema import SSLConfig
from mindfed.tls.identity import load_identity, subject_name
from mindfed.tls.rotation import TlsTarget

if TYPE_CHECKING:
    from mindfed.net.endpoint import TcpEndpoint


def node_tls(ssl: SSLConfig, server_password: str, client_password: str) -> _core.net.TlsOptions:
    """The TLS material of this server's node from the `ssl:` section (files are read when the node is made)."""
    return _core.net.TlsOptions(server_cert_path=ssl.server_cert_path, server_password=server_password,
                                client_cert_path=ssl.client_cert_path, client_password=client_password,
                                ca_cert_path=ssl.ca_cert_path, crl_path=ssl.crl_path, cipher_list=ssl.cipher_list)


def node_tls_target(endpoint: TcpEndpoint, ssl: SSLConfig, server_password: str, client_password: str) -> TlsTarget:
    """The node transport as a rotation target (mindfed.tls.rotation): its four files, loaded again into a new
    context that connections made from then on use; open connections keep theirs."""

    def reload() -> str:
        endpoint.reload_tls(node_tls(ssl, server_password, client_password))  # NetworkError: the old one stays
        parts = []
        for key, path, password in (("server", ssl.server_cert_path, server_password),
                                    ("client", ssl.client_cert_path, client_password)):
            cert = load_identity(path, password, f"ssl.{key}_cert_path").cert
            parts.append(f"{key} {subject_name(cert)} (serial {cert.serial_number:x})")
        parts.append(f"CA {ssl.ca_cert_path}")
        if ssl.crl_path:
            parts.append(f"CRL {ssl.crl_path}")
        return ", ".join(parts)

    return TlsTarget("node transport", (ssl.server_cert_path, ssl.client_cert_path, ssl.ca_cert_path, ssl.crl_path),
                     reload)
