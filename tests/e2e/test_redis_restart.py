"""Redis restart (spec §6.3, §4.5): while Redis is down the servers answer safemode; an empty Redis on the same port
gets the instance back from the servers' memory, the iteration under way fails, and the job runs to its end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from tests.e2e.cluster_procs import (
    FINISHED,
    SAFEMODE,
    Devices,
    ServerProcs,
    job_yaml,
    metrics,
    scheduler,
    wait_for,
    weighted_mean,
    weights_of,
)

from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.protocol import responses as rs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]
DEVICES, ITERATIONS, LOST = 4, 4, 2
CACHE_ERROR = "Failed to access the cache server. Please retry later."


async def scenario(servers: ServerProcs, redis: EmbeddedRedis, fl_name: str) -> dict[str, Any]:
    seen: dict[str, Any] = {"acked": {}, "models": {}}
    ports = servers.ports
    async with scheduler(servers.yaml, servers.redis) as sched, aiohttp.ClientSession() as session:
        devices = Devices(session, fl_name)
        await devices.wait_iteration(ports, 1, timeout_s=30)
        seen["acked"][1] = await devices.run_iteration(ports, DEVICES, 1)
        seen["hyper_params"] = (await sched.ok("/queryInstance"))["result"]

        # iteration 2: everyone joins, half upload, then Redis goes away
        fl_ids = [f"dev{i:03d}" for i in range(DEVICES)]
        await asyncio.gather(*(devices.join(ports[i % 2], f, LOST, 3) for i, f in enumerate(fl_ids)))
        for i, f in enumerate(fl_ids[:2]):
            assert (await devices.upload(ports[i % 2], f, LOST, weights_of(f, LOST), 3)).retcode == 200
        redis.stop()
        stopped_at = time.monotonic()

        async def refusing() -> bool:
            answers = [await devices.start_fl_job(p, "late", LOST - 1, 1) for p in ports]
            return all(a == SAFEMODE for a in answers)

        await wait_for(refusing, 15, "safemode on every server while Redis is down")
        seen["safemode_after_s"] = time.monotonic() - stopped_at
        for _ in range(3):  # a few more device requests, over a second
            for i, port in enumerate(ports):
                assert await devices.start_fl_job(port, "late", LOST - 1, 1) == SAFEMODE
                assert await devices.update_model(port, fl_ids[2 + i], LOST, weights_of(fl_ids[2 + i], LOST),
                                                  3) == SAFEMODE
            await asyncio.sleep(0.3)
        seen["get_result_while_down"] = [rs.parse_response_get_result(await devices.get_result(p, 1)).retcode
                                         for p in ports]  # read-only rounds are served from memory (spec §3.3)
        seen["state_while_down"] = await sched.call("/state")

        # an empty Redis on the same port
        restarted = EmbeddedRedis(port=redis.port).start()
        try:
            await devices.wait_iteration(ports, LOST + 1, timeout_s=30)

            async def both_back() -> bool:
                return len(await sched.nodes()) == 2

            await wait_for(both_back, 10, "both servers in /state after the restart")
            for iteration in range(LOST + 1, ITERATIONS + 1):
                seen["acked"][iteration] = await devices.run_iteration(ports, DEVICES, iteration)
            seen["finished"] = [await devices.start_fl_job(p, "dev000", ITERATIONS, 1) for p in ports]
            seen["state_at_end"] = await sched.ok("/state")
            for iteration in range(ITERATIONS - 2, ITERATIONS + 1):
                models = [await devices.served_model(p, iteration) for p in ports]
                for name in models[0]:
                    assert np.array_equal(models[0][name], models[1][name]), (iteration, name)
                seen["models"][iteration] = models[0]
        finally:
            restarted.stop()
    return seen


def test_an_empty_redis_on_the_same_port_fails_one_iteration_and_the_job_completes(tmp_path: Path) -> None:
    # Prepare
    fl_name = "redisrestart"
    redis = EmbeddedRedis().start()
    yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=ITERATIONS, start_fl_job_threshold=DEVICES,
                    update_model_ratio=1.0, start_fl_job_time_window=20000, update_model_time_window=20000,
                    global_iteration_time_window=40000)
    servers = ServerProcs(yaml, redis.address, tmp_path)
    try:
        for _ in range(2):
            servers.start(free_port())
        # Execute
        seen = asyncio.run(scenario(servers, redis, fl_name))
    except BaseException:
        print(servers.logs())
        raise
    finally:
        servers.stop_all()
        redis.stop()

    # Assert
    assert seen["safemode_after_s"] < 5
    assert seen["get_result_while_down"] == [200, 200]
    assert seen["state_while_down"] == (400, {"code": "1", "error_message": CACHE_ERROR})
    assert seen["finished"] == [FINISHED, FINISHED]
    assert seen["state_at_end"]["cluster_state"] == "CLUSTER_FINISH"
    lines = metrics(tmp_path)
    assert [line["currentIteration"] for line in lines] == list(range(1, ITERATIONS + 1))
    assert [line["iterationResult"] for line in lines] == ["success" if it != LOST else "fail"
                                                           for it in range(1, ITERATIONS + 1)]
    assert lines[LOST - 1]["iterationReason"] == \
        f"The instance status info stored in distributed cache is empty, current iteration: {LOST}"
    expect = weighted_mean(seen["acked"][ITERATIONS])
    for name in expect:
        assert np.allclose(seen["models"][ITERATIONS][name], expect[name], rtol=1e-5, atol=1e-6)
    # the lost iteration carried the previous model forward
    for name, values in seen["models"][LOST].items():
        assert np.allclose(values, weighted_mean(seen["acked"][LOST - 1])[name], rtol=1e-5, atol=1e-6)


async def join_after_an_empty_redis(servers: ServerProcs, redis: EmbeddedRedis, fl_name: str, first: int,
                                    joiner: int) -> tuple[tuple[int, dict[str, Any]], dict[str, np.ndarray],
                                                          dict[str, np.ndarray]]:
    async with scheduler(servers.yaml, servers.redis) as sched, aiohttp.ClientSession() as session:
        devices = Devices(session, fl_name)
        await devices.wait_iteration([first], 1, timeout_s=30)
        await devices.run_iteration([first], 2, 1)
        redis.stop()
        restarted = EmbeddedRedis(port=redis.port).start()
        try:
            await devices.wait_iteration([first], 3, timeout_s=30)
            query = await sched.call("/queryInstance")
            servers.start(joiner)
            await devices.wait_iteration([joiner], 3, timeout_s=30)
            at_first, at_joiner = await asyncio.gather(devices.join(first, "dev000", 3, 1),
                                                       devices.join(joiner, "dev001", 3, 1))
        finally:
            restarted.stop()
    return (query, {t.name: np.array(t.data, copy=True) for t in at_first.feature_map},
            {t.name: np.array(t.data, copy=True) for t in at_joiner.feature_map})


def test_an_empty_redis_gets_the_hyper_params_and_the_model_back(tmp_path: Path) -> None:
    # Prepare
    fl_name = "republish"
    first, joiner = free_port(), free_port()
    redis = EmbeddedRedis().start()
    yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=5, start_fl_job_threshold=2, update_model_ratio=1.0)
    servers = ServerProcs(yaml, redis.address, tmp_path)
    try:
        servers.start(first)
        # Execute
        (status, reply), at_first, at_joiner = asyncio.run(
            join_after_an_empty_redis(servers, redis, fl_name, first, joiner))
    finally:
        servers.stop_all()
        redis.stop()

    # Assert
    assert (status, reply.get("message")) == (200, "Query Instance successful."), reply
    assert any(np.any(v != 0) for v in at_first.values())  # the aggregate of iteration 1, not the initial zeros
    for name, values in at_first.items():
        assert np.array_equal(at_joiner[name], values), name
