"""Mutual TLS for the node-to-node transport: the YAML's `ssl:` section and the two p12 passwords as the
`_core.net.TlsOptions` a `TcpEndpoint` is opened with.

The listening side presents `ssl.server_cert_path` (server.p12), the connecting side `ssl.client_cert_path`
(client.p12); both require the peer's certificate to chain to `ssl.ca_cert_path` and, with `ssl.crl_path`, not to be
revoked in it. The passwords come from `ServerOptions` (flag, environment or the job API's `SSLConfig`), never from
the YAML, and are never logged.
"""

from __future__ import annotations

from mindfed import _core
from mindfed.config.schema import SSLConfig


def node_tls(ssl: SSLConfig, server_password: str, client_password: str) -> _core.net.TlsOptions:
    """The TLS material of this server's node from the `ssl:` section (files are read when the node is made)."""
    return _core.net.TlsOptions(server_cert_path=ssl.server_cert_path, server_password=server_password,
                                client_cert_path=ssl.client_cert_path, client_password=client_password,
                                ca_cert_path=ssl.ca_cert_path, crl_path=ssl.crl_path, cipher_list=ssl.cipher_list)
