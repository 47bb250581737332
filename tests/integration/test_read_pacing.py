"""A device whose updateModel waits at the admission gate keeps its body: the server (its process and its kernel) takes
only a few KiB of it until the request is admitted, and then every waiting request completes (server/read_pacing.py).

A real server over a real Redis; the devices are raw keep-alive sockets that first fetch the model (startFLJob, a
sendfile'd answer), then upload a LeNet-sized update while the test itself holds every seat of the server's gate. What
the server has taken of a body is what its kernel acknowledged: the bytes a device handed to its socket minus those
still in the device's send queue (SIOCOUTQ). Leaving the bodies in the server's kernel instead (Linux's default receive
buffer, 128 KiB and growing) stalled 10,000 devices on TCP memory pressure; leaving them in the process cost 2.6 GB."""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config

from mindfed.model.weights import ModelWeights
from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs
from mindfed.server.read_pacing import BOUNDED_READ_BUFSIZE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEVICES = 48
FLOATS = 61_702  # with "b": LeNet-5's 61,706 floats, a 247 kB update
RECEIVE_BUFFER_BYTES = 16 * 1024  # client.receive_buffer_bytes of the server under test
# The kernel buffer (Linux doubles SO_RCVBUF) plus aiohttp's body buffer (paused past 2 x read_bufsize) plus one recv:
# about 48 KiB. With aiohttp's default read_bufsize the process alone takes 128 KiB; with the kernel's default receive
# buffer the kernel takes ~90 KiB more.
TAKEN_LIMIT_BYTES = 2 * RECEIVE_BUFFER_BYTES + 4 * BOUNDED_READ_BUFSIZE


def wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Device:
    """One keep-alive HTTP/1.1 connection of a non-blocking socket that counts what it has handed to the kernel."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.sent, self._buf = sock, 0, bytearray()

    @classmethod
    async def connect(cls, port: int) -> Device:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(sock)

    async def send(self, path: str, body: bytes) -> None:
        data = memoryview(b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), len(body))
                          + body)
        self.sent, loop = 0, asyncio.get_running_loop()
        while self.sent < len(data):
            try:
                self.sent += self.sock.send(data[self.sent:])
            except BlockingIOError:
                writable = loop.create_future()
                loop.add_writer(self.sock, wake, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(self.sock)

    def taken(self) -> int:
        """Bytes of the last request the server's kernel has acknowledged."""
        unacked = struct.unpack("i", fcntl.ioctl(self.sock, termios.TIOCOUTQ, b"\0" * 4))[0]
        return self.sent - unacked

    async def answer(self) -> bytes:
        loop = asyncio.get_running_loop()
        while b"\r\n\r\n" not in self._buf:
            self._buf += await self._recv(loop)
        head, _, rest = bytes(self._buf).partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        self._buf = bytearray(rest)
        while len(self._buf) < length:
            self._buf += await self._recv(loop)
        body, self._buf = bytes(self._buf[:length]), self._buf[length:]
        return body

    async def _recv(self, loop: asyncio.AbstractEventLoop) -> bytes:
        chunk = await loop.sock_recv(self.sock, 1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    async def post(self, path: str, body: bytes) -> bytes:
        await self.send(path, body)
        return await self.answer()


async def settled(devices: list[Device]) -> list[int]:
    """What the server has taken of each body once that stops growing (bounded: 10 s)."""
    last: list[int] = []
    for _ in range(100):
        await asyncio.sleep(0.1)
        now = [d.taken() for d in devices]
        if now == last:
            return now
        last = now
    raise AssertionError(f"the server kept taking body bytes from waiting devices: {sum(last)} bytes so far")


async def aggregate(device: Device, fl_name: str, iteration: int) -> dict[str, np.ndarray]:
    """The model of `iteration` once served (SucNotReady and the safemode text polled again; bounded: 10 s)."""
    for _ in range(500):
        body = await device.post("getModel", rq.build_request_get_model(fl_name, iteration, "1"))
        if not body.startswith(b"The "):
            view = rs.parse_response_get_model(body)
            if view.retcode == 200:
                return {t.name: t.data for t in view.feature_map}
        await asyncio.sleep(0.02)
    raise AssertionError(f"the model of iteration {iteration} was not served")


async def test_waiting_uploads_stay_on_the_device_and_all_complete(redis_address: str, fl_name: str,
                                                                  tmp_path: Path) -> None:
    # Prepare: a LeNet-sized model, an iteration that waits for every device's update
    model = ModelWeights({"w": np.arange(FLOATS, dtype=np.float32), "b": np.ones(4, np.float32)})
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": DEVICES,
                                               "round.start_fl_job_time_window": 60000,
                                               "round.update_model_time_window": 60000,
                                               "round.global_iteration_time_window": 120000,
                                               "client.receive_buffer_bytes": RECEIVE_BUFFER_BYTES})
    async with running_server(cfg, model, tmp_path) as server:
        devices = [await Device.connect(server.node.port) for _ in range(DEVICES)]
        try:
            jobs = await asyncio.gather(*(d.post("startFLJob", rq.build_request_fl_job(fl_name, f"d{i}", 0, 1, "1"))
                                          for i, d in enumerate(devices)))
            iteration = rs.parse_response_fl_job(jobs[0]).iteration
            update = [("w", np.full(FLOATS, 0.5, np.float32)), ("b", np.zeros(4, np.float32))]
            gate = server.node.gate
            assert gate is not None
            async with AsyncExitStack() as seats:
                for _ in range(gate.max_requests):  # every seat of the gate held: the uploads queue behind them
                    await seats.enter_async_context(gate.enter(0))
                # Execute: every device uploads while nothing is admitted
                uploads = [asyncio.create_task(d.post("updateModel", rq.build_request_update_model(
                    fl_name, f"d{i}", iteration, update, "1"))) for i, d in enumerate(devices)]
                taken = await settled(devices)
                waiting = gate.waiting
            answers = await asyncio.wait_for(asyncio.gather(*uploads), 60)
            models = [await aggregate(d, fl_name, iteration) for d in devices[:4]]
        finally:
            for d in devices:
                d.sock.close()
    # Assert: each waiting request had taken only a few KiB of its 247 kB body, and all of them completed afterwards
    for job in jobs:
        assert rs.parse_response_fl_job(job).retcode == 200
    assert waiting == DEVICES
    print(f"body bytes the server took from a waiting device: max {max(taken)}, mean {sum(taken) / DEVICES:.0f}")
    assert max(taken) <= TAKEN_LIMIT_BYTES, f"a waiting device's body was taken up to {max(taken)} bytes"
    for answer in answers:
        assert rs.parse_response_update_model(answer).retcode == 200
    for weights in models:  # the mean of the updates, sendfile'd on the same keep-alive connections
        assert np.array_equal(weights["w"], np.full(FLOATS, 0.5, np.float32))
