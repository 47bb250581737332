"""Where the PKCS#12 passwords come from outside the job API: environment variables, or files they name.

Never the YAML, never a command line (visible in `ps`), never a log line. `NAME` holds the password itself;
`NAME_FILE` names a file holding it (one trailing newline is dropped), for secret mounts (Kubernetes, systemd
credentials). Setting both is refused: which one wins would be a guess.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mindfed.errors import ConfigError

SERVER_PASSWORD_ENV = "MINDFED_SSL_SERVER_PASSWORD"  # password of ssl.server_cert_path
CLIENT_PASSWORD_ENV = "MINDFED_SSL_CLIENT_PASSWORD"  # password of ssl.client_cert_path


def password_from_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The password in `$name`, or in the file `$name_FILE`; "" when neither is set.

    Raises:
        ConfigError: both are set, or the file cannot be read (the message names the variable and the file, never
            the contents).
    """
    env = os.environ if environ is None else environ
    direct, file_name = env.get(name), env.get(f"{name}_FILE")
    if direct is not None and file_name is not None:
        raise ConfigError(f"both {name} and {name}_FILE are set; set one of them")
    if file_name is None:
        return direct or ""
    try:
        text = Path(file_name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from None
    return text[:-1] if text.endswith("\n") else text
