"""Redis down → safemode text; Redis back → the cluster recovers by itself (spec §3.3, §6.3)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tests.integration.cluster import running_server, ut_config, ut_model

from mindfed.cache.embedded import EmbeddedRedis
from mindfed.protocol.responses import parse_response_fl_job

pytestmark = pytest.mark.integration
SAFEMODE = b"The cluster is in safemode."


async def test_safemode_while_redis_is_down_and_recovery_after(fl_name: str, tmp_path: Path) -> None:
    redis = EmbeddedRedis().start()
    try:
        cfg = ut_config(redis.address, fl_name, **{"round.start_fl_job_threshold": 2})
        async with running_server(cfg, ut_model(), tmp_path) as server:
            assert parse_response_fl_job(await server.start_fl_job("a")).retcode == 200
            redis.stop()
            deadline = time.monotonic() + 3
            body = await server.start_fl_job("b")
            while body != SAFEMODE and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                body = await server.start_fl_job("b")
            assert body == SAFEMODE
            redis = EmbeddedRedis(port=redis.port).start()  # an empty Redis on the same address
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                body = await server.start_fl_job("b")
                if body != SAFEMODE:
                    break
                await asyncio.sleep(0.05)
            job = parse_response_fl_job(body)
            # the lost iteration 1 failed; the cluster continues at 2 with the previous model
            assert (job.retcode, job.iteration) == (200, 2)
    finally:
        redis.stop()
