"""The scheduler's view of a cluster of server processes (spec §6.1, §6.2, §4.7): /state lists the live servers, a
kill -9 drops one within the heartbeat TTL and the others carry on, a restarted one comes back; /disableFLS turns
devices away on every server and /enableFLS lets training continue."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.e2e.cluster_procs import (
    FINISHED,
    Devices,
    Scheduler,
    ServerProcs,
    job_yaml,
    metrics,
    scheduler,
    wait_for,
    weights_of,
)

from mindfed.cache.embedded import EmbeddedRedis, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]
DEVICES, HEARTBEAT_TTL_S = 4, 2


def check_state_shape(state: dict[str, Any], node_ids: set[str]) -> None:
    assert list(state) == ["cluster_state", "code", "message", "nodes"]
    assert (state["cluster_state"], state["code"], state["message"]) == (
        "CLUSTER_READY", "0", "Get cluster state successful.")
    nodes = state["nodes"]
    assert [n["node_id"] for n in nodes] == sorted(node_ids)
    for node in nodes:
        assert list(node) == ["node_id", "role", "tcp_address"]
        assert node["role"] == "SERVER"
        assert node["tcp_address"].startswith("127.0.0.1:")
        assert node["node_id"].startswith(node["tcp_address"] + "::")


async def node_set(sched: Scheduler) -> set[str]:
    return {n["node_id"] for n in await sched.nodes()}


async def scenario(servers: ServerProcs, fl_name: str, ports: list[int]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with scheduler(servers.yaml, servers.redis) as sched, aiohttp.ClientSession() as session:
        devices = Devices(session, fl_name)

        async def have(ids: set[str]) -> bool:
            return await node_set(sched) == ids

        # /state of a ready cluster
        await devices.wait_iteration(ports, 1, timeout_s=30)
        ids = {servers.node_ids(p)[-1] for p in ports}
        await wait_for(lambda: have(ids), 10, "3 servers in /state")
        check_state_shape(await sched.ok("/state"), ids)
        await devices.run_iteration(ports, DEVICES, 1)

        # kill -9: gone from /state within the heartbeat TTL; the two left complete an iteration
        victim, left = ports[2], ports[:2]
        victim_id = servers.node_ids(victim)[-1]
        servers.kill(victim)
        killed_at = time.monotonic()
        await wait_for(lambda: have(ids - {victim_id}), HEARTBEAT_TTL_S + 5, "killed server gone from /state")
        seen["gone_after_s"] = time.monotonic() - killed_at
        check_state_shape(await sched.ok("/state"), ids - {victim_id})
        await devices.run_iteration(left, DEVICES, 2)

        # restart it on the same port: back in /state under a new node id, serving the next iteration
        servers.start(victim)
        await devices.wait_iteration([victim], 3, timeout_s=30)
        ids = {servers.node_ids(p)[-1] for p in ports}
        assert victim_id not in ids
        await wait_for(lambda: have(ids), 10, "restarted server in /state")
        check_state_shape(await sched.ok("/state"), ids)
        await devices.run_iteration(ports, DEVICES, 3)

        # /disableFLS while devices are in iteration 4: every server turns every device round away
        fl_ids = [f"dev{i:03d}" for i in range(DEVICES)]
        await asyncio.gather(*(devices.join(ports[i % 3], f, 4, 2) for i, f in enumerate(fl_ids)))
        seen["disable"] = await sched.ok("/disableFLS")
        seen["disabled_state"] = (await sched.ok("/state"))["cluster_state"]

        async def all_disabled() -> bool:
            return all([await devices.start_fl_job(p, "dev999", 3, 1) == FINISHED for p in ports])

        await wait_for(all_disabled, 10, "every server disabled")
        seen["disabled_answers"] = {
            (p, name): answer for p in ports for name, answer in (
                ("startFLJob", await devices.start_fl_job(p, "dev000", 3, 2)),
                ("updateModel", await devices.update_model(p, "dev000", 4, weights_of("dev000", 4), 2)),
                ("getModel", await devices.get_model(p, 3)),
                ("getResult", await devices.get_result(p, 4)))}

        # /enableFLS: the next iteration trains on all three servers
        seen["enable"] = await sched.ok("/enableFLS")
        seen["enabled_state"] = (await sched.ok("/state"))["cluster_state"]
        await devices.wait_iteration(ports, 5, timeout_s=10)
        await devices.run_iteration(ports, DEVICES, 5)
    return seen


def test_state_follows_kills_restarts_and_disable_enable(tmp_path: Path) -> None:
    # Prepare
    fl_name = "clusterstate"
    ports = [free_port() for _ in range(3)]
    with EmbeddedRedis() as redis:
        yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=10, start_fl_job_threshold=DEVICES,
                        update_model_ratio=1.0, start_fl_job_time_window=20000, update_model_time_window=20000,
                        global_iteration_time_window=40000)
        servers = ServerProcs(yaml, redis.address, tmp_path, heartbeat_ttl_s=HEARTBEAT_TTL_S)
        try:
            for port in ports:
                servers.start(port)
            # Execute
            seen = asyncio.run(scenario(servers, fl_name, ports))
        except BaseException:
            print(servers.logs())
            raise
        finally:
            servers.stop_all()

    # Assert
    assert seen["gone_after_s"] <= HEARTBEAT_TTL_S + 1.5
    assert seen["disable"]["message"] == "start disabling FL-Server successful."
    assert seen["disabled_state"] == "CLUSTER_DISABLE"
    assert set(seen["disabled_answers"].values()) == {FINISHED}
    assert seen["enable"]["message"] == "start enabling FL-Server successful."
    assert seen["enabled_state"] == "CLUSTER_READY"
    lines = metrics(tmp_path)
    assert [(line["currentIteration"], line["iterationResult"]) for line in lines] == [
        (1, "success"), (2, "success"), (3, "success"), (4, "fail"), (5, "success")]
    assert lines[3]["iterationReason"] == "Disable instance"
