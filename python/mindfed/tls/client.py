"""The device side of HTTPS: a client `ssl.SSLContext` that trusts a CA file (the SDK and the simulator use it)."""

from __future__ import annotations

import ssl
from pathlib import Path

from mindfed.errors import ConfigError


def client_context(ca_file: str | Path) -> ssl.SSLContext:
    """A context verifying the server against the PEM CA in `ca_file` (host name checked, TLS 1.2 minimum).

    Raises:
        ConfigError: the file is missing or holds no usable certificate.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"CA file {ca_file}: cannot load it: {exc}") from None
    return context
