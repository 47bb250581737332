"""Devices that keep a cluster training in the background while a test looks at it from outside (a browser).

Each round: read the servers' current iteration (getResult), every device tries startFLJob there (those past the
threshold are turned away, as real devices are) and the admitted ones upload an update with a loss that falls and an
accuracy that rises with the rounds; then wait for the iteration to end. A disabled cluster, a new instance, a
refusal or a timeout is just waited out: the loop runs on its own event loop in a thread until `stop()`, every
request bounded.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import aiohttp
import numpy as np
from tests.e2e.cluster_procs import TIMESTAMP, weights_of

from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)


class TrainingDevices:
    """`count` devices spread over the servers on `ports` of job `fl_name`; `uploads` counts accepted updates.

    Args:
        pause_s: the rest between iterations, so an observer polling every second sees each one.
    """

    def __init__(self, fl_name: str, ports: list[int], count: int, pause_s: float = 0.7) -> None:
        self.fl_name, self.ports, self.count, self.pause_s = fl_name, ports, count, pause_s
        self.uploads = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._train()), name="training-devices",
                                        daemon=True)
        self._rng = np.random.default_rng(11)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 20.0) -> None:
        self._stop.set()
        if not self._thread.is_alive():  # never started, or already ended
            return
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the devices did not stop"

    async def _post(self, session: aiohttp.ClientSession, port: int, round_name: str, body: bytes) -> bytes | None:
        """The answer's bytes, or None when the server cannot be reached or answers an HTTP error."""
        try:
            async with session.post(f"http://127.0.0.1:{port}/{round_name}", data=body,
                                    timeout=REQUEST_TIMEOUT) as resp:
                return await resp.read() if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.errors.append(f"{round_name} at {port}: {exc!r}")
            return None

    async def _iteration(self, session: aiohttp.ClientSession) -> int | None:
        raw = await self._post(session, self.ports[0], "getResult",
                               rq.build_request_get_result(self.fl_name, 0, TIMESTAMP))
        if raw is None or raw.startswith(b"The "):  # safemode, disabled or finished
            return None
        return rs.parse_response_get_result(raw).iteration

    async def _device(self, session: aiohttp.ClientSession, index: int, iteration: int, step: int) -> None:
        port, fl_id, data_size = self.ports[index % len(self.ports)], f"dev{index:03d}", 2 + index
        raw = await self._post(session, port, "startFLJob", rq.build_request_fl_job(
            self.fl_name, fl_id, iteration, data_size, TIMESTAMP, eval_data_size=10))
        if raw is None or raw.startswith(b"The ") or rs.parse_response_fl_job(raw).retcode != 200:
            return
        loss = 2.0 * math.exp(-step / 8) + 0.05 * float(self._rng.random())
        accuracy = min(0.99, 1.0 - 0.9 * math.exp(-step / 6) + 0.02 * float(self._rng.random()))
        feature_map = [(k, (v * data_size).astype(np.float32)) for k, v in weights_of(fl_id, iteration).items()]
        raw = await self._post(session, port, "updateModel", rq.build_request_update_model(
            self.fl_name, fl_id, iteration, feature_map, TIMESTAMP, upload_loss=loss, upload_accuracy=accuracy))
        if raw is not None and not raw.startswith(b"The ") and rs.parse_response_update_model(raw).retcode == 200:
            self.uploads += 1

    async def _train(self) -> None:
        step = 0
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set():
                iteration = await self._iteration(session)
                if iteration is None:
                    await asyncio.sleep(0.2)
                    continue
                step += 1
                await asyncio.gather(*(self._device(session, i, iteration, step) for i in range(self.count)))
                deadline = time.monotonic() + 15
                while not self._stop.is_set() and time.monotonic() < deadline:
                    if await self._iteration(session) != iteration:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(self.pause_s)
