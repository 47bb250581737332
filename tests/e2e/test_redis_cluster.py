"""A run on a Redis Cluster (docs/cluster.md, Redis Sentinel and Cluster): two server processes and the scheduler on
3 cluster masters, reached through `redis+cluster://` seed nodes. Every key of the job carries its hash tag, so the
scripts, transactions and multi-key commands all land on the slot's node; three iterations give exact aggregates."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import redis
from tests.e2e.cluster_procs import (
    FINISHED,
    Devices,
    ServerProcs,
    job_yaml,
    metrics,
    scheduler,
    weighted_mean,
)
from tests.redis_ha import RedisClusterSet

from mindfed.cache.embedded import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]
DEVICES, ITERATIONS = 4, 3


async def scenario(servers: ServerProcs, fl_name: str) -> dict[str, Any]:
    seen: dict[str, Any] = {"acked": {}, "models": {}}
    ports = servers.ports
    async with scheduler(servers.yaml, servers.redis) as sched, aiohttp.ClientSession() as session:
        devices = Devices(session, fl_name)
        await devices.wait_iteration(ports, 1, timeout_s=30)
        for iteration in range(1, ITERATIONS + 1):
            seen["acked"][iteration] = await devices.run_iteration(ports, DEVICES, iteration)
            seen["models"][iteration] = [await devices.served_model(p, iteration) for p in ports]
        seen["finished"] = [await devices.start_fl_job(p, "dev000", ITERATIONS, 1) for p in ports]
        seen["state_at_end"] = await sched.ok("/state")
    return seen


def job_keys_per_node(nodes: RedisClusterSet, fl_name: str) -> dict[int, int]:
    """How many of the job's keys each cluster node holds."""
    counts = {}
    for port in nodes.ports:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as client:
            counts[port] = sum(1 for _ in client.scan_iter(match=f"ms_fl:{{{fl_name}}}:*", count=1000))
    return counts


def test_three_iterations_on_a_redis_cluster_give_exact_aggregates(tmp_path: Path) -> None:
    # Prepare
    fl_name = "rediscluster"
    (tmp_path / "redis").mkdir()
    nodes = RedisClusterSet(tmp_path / "redis").start()
    yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=ITERATIONS, start_fl_job_threshold=DEVICES,
                    update_model_ratio=1.0, start_fl_job_time_window=30000, update_model_time_window=30000,
                    global_iteration_time_window=60000)
    servers = ServerProcs(yaml, nodes.address, tmp_path)
    try:
        for _ in range(2):
            servers.start(free_port())
        # Execute
        seen = asyncio.run(scenario(servers, fl_name))
        per_node = job_keys_per_node(nodes, fl_name)
    except BaseException:
        print(servers.logs())
        print(nodes.logs())
        raise
    finally:
        servers.stop_all()
        nodes.stop()

    # Assert
    assert seen["finished"] == [FINISHED, FINISHED]
    assert seen["state_at_end"]["cluster_state"] == "CLUSTER_FINISH"
    assert [port for port, count in per_node.items() if count] != [], per_node
    assert len([port for port, count in per_node.items() if count]) == 1, per_node  # one slot, so one node
    lines = metrics(tmp_path)
    assert [line["iterationResult"] for line in lines] == ["success"] * ITERATIONS
    for iteration in range(1, ITERATIONS + 1):
        expect = weighted_mean(seen["acked"][iteration])
        for served in seen["models"][iteration]:
            for name in expect:
                assert np.allclose(served[name], expect[name], rtol=1e-5, atol=1e-6), (iteration, name)
