"""The node half of `python -m benchmarks.tls`: the node-to-node transport with and without mutual TLS.

One-way transfer of a 10M-float partial sum (40 MB) between two processes, as server/peers.py moves it:
`TcpEndpoint.request(addr, type, array)` to a peer whose handler answers b"k". Plain TCP and mutual TLS (certificates
made in a temporary directory by tests/tls_certs.py) are measured in the same run, best of N, timed at the sender from
first byte to ack; the ratio TLS / plain is the figure that matters (goal >= 0.7). The first request of each run also
gives the connection set-up (TCP connect, and for TLS the handshake with both certificates verified).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.transport import _node_receiver
from mindfed import _core
from mindfed.net import TcpEndpoint

DATA, STOP, PING = 1, 2, 3
PARTIAL_FLOATS = 10_000_000
TIMEOUT_S = 120.0

TlsFiles = tuple[str, str, str] | None  # (server.p12, client.p12, ca.pem) of one node


def _options(files: TlsFiles) -> _core.net.TlsOptions | None:
    from tests.tls_certs import CIPHERS, CLIENT_PASSWORD, SERVER_PASSWORD  # noqa: PLC0415 - the test PKI

    if files is None:
        return None
    server, client, ca = files
    return _core.net.TlsOptions(server_cert_path=server, server_password=SERVER_PASSWORD, client_cert_path=client,
                                client_password=CLIENT_PASSWORD, ca_cert_path=ca, cipher_list=CIPHERS)


def transfer_seconds(files: tuple[TlsFiles, TlsFiles], repeats: int) -> tuple[float, float]:
    """(best transfer, connection set-up) seconds for a 40 MB partial sum; files: (receiver, sender) TLS or None."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_node_receiver, args=(child, functools.partial(_options, files[0])))
    proc.start()
    address = f"127.0.0.1:{parent.recv()}"
    partial = np.ones(PARTIAL_FLOATS, np.float32)

    async def main() -> tuple[float, float]:
        async with TcpEndpoint.open(tls=_options(files[1])) as endpoint:
            start = time.perf_counter()
            await endpoint.request(address, PING, b"", TIMEOUT_S)  # connect (+ handshake)
            setup = time.perf_counter() - start
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                ack = await endpoint.request(address, DATA, partial, TIMEOUT_S)
                best = min(best, time.perf_counter() - start)
                assert ack.payload.tobytes() == b"k"
            await endpoint.request(address, STOP, b"", TIMEOUT_S)
        return best, setup

    try:
        return asyncio.run(main())
    finally:
        proc.join(30)


def node_transport_figures(repeats: int) -> tuple[list[list[object]], dict[str, float | int | str]]:
    """Table rows and flat figures: plain TCP vs mutual TLS for a 10M-float partial sum, in one run."""
    from tests.tls_certs import Pki  # noqa: PLC0415 - certificates only for this run

    with tempfile.TemporaryDirectory(prefix="mindfed-bench-tls-") as tmp:
        pki = Pki(Path(tmp))
        nodes = [pki.node(name) for name in ("receiver", "sender")]
        tls_files = tuple((str(n.server_p12), str(n.client_p12), str(pki.ca_path)) for n in nodes)
        plain, plain_setup = transfer_seconds((None, None), repeats)
        tls, tls_setup = transfer_seconds((tls_files[0], tls_files[1]), repeats)
    nbytes = PARTIAL_FLOATS * 4
    plain_gbps, tls_gbps = nbytes / plain / 1e9, nbytes / tls / 1e9
    rows: list[list[object]] = [["plain TCP", plain_gbps, plain * 1e3, plain_setup * 1e3, 1.0],
                                ["mutual TLS", tls_gbps, tls * 1e3, tls_setup * 1e3, tls_gbps / plain_gbps]]
    figures: dict[str, float | int | str] = {
        "node_partial_floats": PARTIAL_FLOATS, "node_plain_gbps": plain_gbps, "node_tls_gbps": tls_gbps,
        "node_plain_ms": plain * 1e3, "node_tls_ms": tls * 1e3, "node_tls_ratio": tls_gbps / plain_gbps,
        "node_plain_connect_ms": plain_setup * 1e3, "node_tls_handshake_ms": tls_setup * 1e3,
    }
    return rows, figures


NODE_HEADERS = ["node transport, 40 MB partial", "GB/s", "ms", "connect ms", "ratio to plain"]
