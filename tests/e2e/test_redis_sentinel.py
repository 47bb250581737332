"""A Sentinel failover in the middle of a run (docs/cluster.md, Redis Sentinel and Cluster): two server processes and
the scheduler on a Sentinel set (a master, 2 replicas, 3 sentinels); the master is SIGKILLed inside the updateModel
window of iteration 2. The servers answer safemode until the sentinels promote a replica, then carry on against it:
the iteration under way completes, every update answered SUCCEED (before and after the kill) is in its aggregate,
weighted exactly, and the job runs to its end."""

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
    weighted_mean,
    weights_of,
)
from tests.redis_ha import SentinelSet

from mindfed.cache.embedded import free_port
from mindfed.protocol import responses as rs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
DEVICES, ITERATIONS, FAILOVER = 4, 3, 2
BEFORE_KILL = 2  # devices of iteration FAILOVER acknowledged before the master dies


async def upload_until_acked(devices: Devices, port: int, fl_id: str, iteration: int, size: int,
                             timeout_s: float = 30) -> int:
    """updateModel until SUCCEED; returns how many safemode answers came first."""
    safemode, deadline = 0, time.monotonic() + timeout_s
    while True:
        raw = await devices.update_model(port, fl_id, iteration, weights_of(fl_id, iteration), size)
        if raw != SAFEMODE:
            reply = rs.parse_response_update_model(raw)
            assert reply.retcode == 200, (fl_id, reply.retcode, reply.reason)
            return safemode
        safemode += 1
        assert time.monotonic() < deadline, f"{fl_id}: safemode for {timeout_s} s"
        await asyncio.sleep(0.1)


async def failover_iteration(devices: Devices, ports: list[int], sentinels: SentinelSet) -> dict[str, Any]:
    """Iteration FAILOVER: everyone joins, BEFORE_KILL upload, the master is killed, the rest upload until acked."""
    fl_ids = [f"dev{i:03d}" for i in range(DEVICES)]
    at = {f: ports[i % len(ports)] for i, f in enumerate(fl_ids)}
    sizes = {f: 1 + (i * 5 + FAILOVER) % 7 for i, f in enumerate(fl_ids)}
    await asyncio.gather(*(devices.join(at[f], f, FAILOVER, sizes[f]) for f in fl_ids))
    for f in fl_ids[:BEFORE_KILL]:
        assert await upload_until_acked(devices, at[f], f, FAILOVER, sizes[f]) == 0
    killed = sentinels.kill_master()
    killed_at = time.monotonic()
    safemode = [await upload_until_acked(devices, at[f], f, FAILOVER, sizes[f]) for f in fl_ids[BEFORE_KILL:]]
    back_after_s = time.monotonic() - killed_at
    await devices.wait_iteration(ports, FAILOVER + 1, timeout_s=30)
    return {"killed": killed, "safemode": safemode, "back_after_s": back_after_s,
            "acked": {f: (weights_of(f, FAILOVER), sizes[f]) for f in fl_ids}}


async def scenario(servers: ServerProcs, sentinels: SentinelSet, fl_name: str) -> dict[str, Any]:
    seen: dict[str, Any] = {"acked": {}, "models": {}}
    ports = servers.ports
    async with scheduler(servers.yaml, servers.redis) as sched, aiohttp.ClientSession() as session:
        devices = Devices(session, fl_name)
        await devices.wait_iteration(ports, 1, timeout_s=30)
        for iteration in range(1, ITERATIONS + 1):
            if iteration == FAILOVER:
                seen["failover"] = await failover_iteration(devices, ports, sentinels)
                seen["acked"][iteration] = seen["failover"].pop("acked")
            else:
                seen["acked"][iteration] = await devices.run_iteration(ports, DEVICES, iteration)
            seen["models"][iteration] = [await devices.served_model(p, iteration) for p in ports]
        seen["finished"] = [await devices.start_fl_job(p, "dev000", ITERATIONS, 1) for p in ports]
        seen["state_at_end"] = await sched.ok("/state")
    return seen


def test_a_sentinel_failover_mid_iteration_loses_no_acknowledged_update(tmp_path: Path) -> None:
    # Prepare
    fl_name = "sentinelfailover"
    (tmp_path / "redis").mkdir()
    sentinels = SentinelSet(tmp_path / "redis").start()
    yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=ITERATIONS, start_fl_job_threshold=DEVICES,
                    update_model_ratio=1.0, start_fl_job_time_window=30000, update_model_time_window=30000,
                    global_iteration_time_window=60000)
    # heartbeats outlive the failover, so no live server is taken for dead meanwhile (docs/cluster.md)
    servers = ServerProcs(yaml, sentinels.address, tmp_path, heartbeat_ttl_s=10)
    try:
        for _ in range(2):
            servers.start(free_port())
        # Execute
        seen = asyncio.run(scenario(servers, sentinels, fl_name))
        promoted = sentinels.current_master_port()
    except BaseException:
        print(servers.logs())
        print(sentinels.logs())
        raise
    finally:
        servers.stop_all()
        sentinels.stop()

    # Assert
    failover = seen["failover"]
    assert promoted != failover["killed"]
    assert promoted in sentinels.replica_ports
    assert sum(failover["safemode"]) > 0, "no safemode answer while the master was gone"
    assert failover["back_after_s"] < 20
    assert seen["finished"] == [FINISHED, FINISHED]
    assert seen["state_at_end"]["cluster_state"] == "CLUSTER_FINISH"
    lines = metrics(tmp_path)
    assert [line["currentIteration"] for line in lines] == list(range(1, ITERATIONS + 1))
    assert [line["iterationResult"] for line in lines] == ["success"] * ITERATIONS
    for iteration in range(1, ITERATIONS + 1):
        expect = weighted_mean(seen["acked"][iteration])
        for served in seen["models"][iteration]:
            for name in expect:
                assert np.allclose(served[name], expect[name], rtol=1e-5, atol=1e-6), (iteration, name)
