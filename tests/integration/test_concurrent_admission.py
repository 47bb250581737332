"""2,000 devices at once against one server (issue 13): every answer agrees with what Redis recorded. The devices
Redis admitted are exactly the ones told SUCCEED, the updates it counts exactly the acknowledged ones, and no device is
sent the safemode text because of our own resource limits (the Redis pool waits instead of overflowing)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config

from mindfed.model.weights import ModelWeights
from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DEVICES, ADMITTED = 2000, 1500


async def test_2000_concurrent_devices_agree_with_redis(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{
        "round.start_fl_job_threshold": ADMITTED, "round.update_model_ratio": 1.0,
        "round.start_fl_job_time_window": 200000, "round.update_model_time_window": 200000,
        "round.global_iteration_time_window": 400000})
    model = ModelWeights({"w": np.zeros(16), "b": np.zeros(4)})
    async with running_server(cfg, model, tmp_path) as server:
        url = server.url
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=DEVICES)) as session:
            async def post(round_name: str, body: bytes) -> bytes:
                async with session.post(url + round_name, data=body) as resp:
                    assert resp.status == 200
                    return await resp.read()

            async def join(i: int) -> tuple[int, bytes]:
                return i, await post("startFLJob", rq.build_request_fl_job(fl_name, f"d{i}", 0, 1 + i % 7, "1"))

            answers = await asyncio.gather(*(join(i) for i in range(DEVICES)))
            texts = [body for _, body in answers if body.startswith(b"The ")]
            assert not texts, texts[:3]  # no safemode, no inner error
            joined = {i for i, body in answers if rs.parse_response_fl_job(body).retcode == 200}
            refused = {rs.parse_response_fl_job(body).reason for i, body in answers if i not in joined}
            assert refused == {"Current amount for startFLJob has reached the threshold. Please startFLJob later."}
            state = server.node.state
            assert state is not None
            cache = state.cache()
            metas = await cache.device_metas([f"d{i}" for i in range(DEVICES)])
            assert set(metas) == {f"d{i}" for i in joined}
            assert len(joined) == ADMITTED == await cache.count("startFLJob")

            async def upload(i: int) -> tuple[int, bytes]:
                n = 1 + i % 7
                fm = [("w", np.full(16, n * 0.5, np.float32)), ("b", np.full(4, n * 0.5, np.float32))]
                return i, await post("updateModel", rq.build_request_update_model(fl_name, f"d{i}", 1, fm, "1"))

            uploads = await asyncio.gather(*(upload(i) for i in sorted(joined)))
            acked = {i for i, body in uploads if not body.startswith(b"The ")
                     and rs.parse_response_update_model(body).retcode == 200}
            assert acked == joined
            model_served = await server.wait_model(1, timeout_s=60)
    assert {t.name: float(t.data[0]) for t in model_served.feature_map} == pytest.approx({"w": 0.5, "b": 0.5})
