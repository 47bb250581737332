"""Mutual TLS between servers: the node endpoint opened with the `ssl:` certificates, and the join check.

With `enable_ssl: true` every server-to-server connection is mutual TLS (mindfed.net.tls): a peer whose certificate
is from another CA, revoked in `ssl.crl_path`, or missing cannot connect, so it neither receives nor delivers partial
sums (the aggregator then reads that server's durable updates from Redis, server/combine.py: the aggregate stays
exact). Before registering, a joining server says HELLO to every live server; if they all refuse its handshake it is
the odd one out and does not join (a start-up error naming the cause). Peers that are merely unreachable are not
counted: they may be dead but not yet expired.
"""

from __future__ import annotations

import asyncio
import logging

from mindfed.config import FLConfig
from mindfed.errors import ConfigError, NetworkError
from mindfed.net.endpoint import TcpEndpoint
from mindfed.net.tls import node_tls
from mindfed.server.peers import HELLO

logger = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 5.0


def open_peer_endpoint(cfg: FLConfig, host: str, server_password: str, client_password: str,
                       source: str = "config", *, port: int = 0) -> TcpEndpoint:
    """The server-to-server endpoint on host:port (0: a free port); mutual TLS when cfg.enable_ssl.

    Raises:
        ConfigError: enable_ssl and the certificates cannot be used (a wrong password reads "PKCS12_parse failed"),
            or a fixed port that cannot be bound (in use).
        NetworkError: the address cannot be bound.
    """
    tls = node_tls(cfg.ssl, server_password, client_password) if cfg.enable_ssl else None
    try:
        return TcpEndpoint.open(host, port, max_connections=cfg.client.connection_num, tls=tls)
    except NetworkError as exc:
        if tls is None:
            if port:  # a fixed --tcp_server_port in use is the operator's to fix, not a crash
                raise ConfigError(f"tcp_server_port: {exc}") from None
            raise
        raise ConfigError(f"{source}: ssl: {exc}") from None


async def check_peers_accept_us(endpoint: TcpEndpoint, alive: dict[str, str]) -> None:
    """Raise ConfigError when every live server in `alive` (node_id -> tcp address) refuses our TLS connection."""
    if not alive:
        return
    results = await asyncio.gather(*(_hello(endpoint, address) for address in alive.values()))
    refused = {node: reason for node, reason in zip(alive, results, strict=True) if reason is not None}
    for node, reason in refused.items():
        logger.warning("server %s refused the node-to-node TLS connection: %s", node, reason)
    if refused and len(refused) == len(alive):
        first = next(iter(refused.values()))
        raise ConfigError(f"cannot join: all {len(alive)} live servers refuse this server's TLS connection "
                          f"({first}); check ssl.server_cert_path, ssl.client_cert_path, ssl.ca_cert_path and "
                          "ssl.crl_path")


async def _hello(endpoint: TcpEndpoint, address: str) -> str | None:
    """None when `address` accepted us (or is unreachable: maybe dead); otherwise why it refused."""
    try:
        await endpoint.request(address, HELLO, b"", HELLO_TIMEOUT_S)
    except NetworkError as exc:
        return str(exc) if "TLS" in str(exc) else None
    return None
