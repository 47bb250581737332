"""The model in startFLJob's answer goes to every device from one shared copy (server/shared_body.py): devices that
are slow to read their answer cost the server no memory per connection. A real server over a real Redis; the devices
are raw sockets that send their request and then read nothing until the end."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config

from mindfed.model.weights import ModelWeights
from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEVICES = 64
FLOATS = 1_000_000  # a 4 MB model: far more than a socket's send buffer takes at once


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def read_answer(sock: socket.socket) -> bytes:
    """One HTTP/1.1 answer (Content-Length framed) from a blocking socket."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        body += chunk
    return bytes(body)


async def test_slow_readers_of_a_large_model_cost_no_memory_per_connection(redis_address: str, fl_name: str,
                                                                           tmp_path: Path) -> None:
    # Prepare: a 4 MB model, an iteration that admits every device
    model = ModelWeights({"w": np.arange(FLOATS, dtype=np.float32), "b": np.ones(4, np.float32)})
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": DEVICES,
                                               "round.start_fl_job_time_window": 60000,
                                               "round.global_iteration_time_window": 120000})
    async with running_server(cfg, model, tmp_path) as server:
        host, port = server.url.removeprefix("http://").rstrip("/").split(":")
        socks = []
        try:
            baseline = 0
            for i in range(DEVICES):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow device: a small window
                sock.connect((host, int(port)))
                body = rq.build_request_fl_job(fl_name, f"d{i}", 0, 1, "1")
                sock.sendall(b"POST /startFLJob HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                socks.append(sock)
                if i == 0:  # the first answer builds the cached response; measure from there
                    for _ in range(100):
                        await asyncio.sleep(0.05)
                        if server.node.state.models._responses:  # type: ignore[union-attr]  # noqa: SLF001
                            break
                    await asyncio.sleep(0.2)
                    baseline = rss_bytes()
            # Execute: every device admitted, every answer under way, nobody reading
            for _ in range(200):
                await asyncio.sleep(0.05)
                if await server.node.state.cache().count("startFLJob") >= DEVICES:  # type: ignore[union-attr]
                    break
            await asyncio.sleep(0.5)  # let the server push what the sockets take
            grown = rss_bytes() - baseline
            answers = await asyncio.gather(*(asyncio.to_thread(read_answer, s) for s in socks))
        finally:
            for sock in socks:
                sock.close()
    # Assert: all answers are the model, and waiting for 64 slow readers held far less than one model each
    for answer in answers:
        reply = rs.parse_response_fl_job(answer)
        assert reply.retcode == 200
        assert np.array_equal({t.name: t.data for t in reply.feature_map}["w"], model.flat("w"))
    print(f"RSS growth with {DEVICES} slow readers of a {model.nbytes / 1e6:.0f} MB answer: {grown / 1e6:.1f} MB")
    assert grown < 4 * model.nbytes, f"RSS grew {grown / 1e6:.1f} MB while {DEVICES} devices were slow to read"
