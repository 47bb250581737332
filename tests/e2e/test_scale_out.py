"""Scale-out (spec §6.2): servers started while the cluster trains join it, appear in the scheduler's /state, serve
devices from the next iteration on with the cluster's model, and no iteration fails because of them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from tests.e2e.cluster_procs import (
    FINISHED,
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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]
DEVICES, ITERATIONS, JOIN_AT = 6, 5, 2


async def train(servers: ServerProcs, fl_name: str, first: int, joiners: list[int]) -> tuple[
        dict[int, dict[str, tuple[dict[str, np.ndarray], int]]], dict[int, dict[str, np.ndarray]],
        dict[int, set[int]]]:
    """Run every iteration; in iteration JOIN_AT, after the devices joined and before they upload, start
    `joiners`. Returns the acknowledged updates, the model each startFLJob handed out (checked equal across
    devices), and the servers that answered SUCCEED per iteration."""
    acked: dict[int, dict[str, tuple[dict[str, np.ndarray], int]]] = {}
    handed: dict[int, dict[str, np.ndarray]] = {}
    answered: dict[int, set[int]] = {}
    async with scheduler(servers.yaml, servers.redis) as sched, aiohttp.ClientSession() as session:
        devices = Devices(session, fl_name)
        await devices.wait_iteration([first], 1, timeout_s=30)
        for iteration in range(1, ITERATIONS + 1):
            serving = [first] if iteration <= JOIN_AT else [first, *joiners]
            fl_ids = [f"dev{i:03d}" for i in range(DEVICES)]
            ports = {fl_id: serving[i % len(serving)] for i, fl_id in enumerate(fl_ids)}
            sizes = {fl_id: 1 + (i * 7 + iteration) % 11 for i, fl_id in enumerate(fl_ids)}
            jobs = await asyncio.gather(*(devices.join(ports[f], f, iteration, sizes[f]) for f in fl_ids))
            models = [{t.name: np.array(t.data, copy=True) for t in job.feature_map} for job in jobs]
            for model in models[1:]:  # every server hands out the same model
                assert all(np.array_equal(model[k], models[0][k]) for k in models[0]), iteration
            handed[iteration] = models[0]
            if iteration == JOIN_AT:  # scale out while this iteration runs
                for port in joiners:
                    servers.start(port)

                async def three_nodes() -> bool:
                    return len(await sched.nodes()) == 3

                await wait_for(three_nodes, 30, "3 servers in /state")
                nodes = await sched.nodes()
                expected = {servers.node_ids(p)[-1] for p in [first, *joiners]}
                assert {n["node_id"] for n in nodes} == expected
                assert all(n["role"] == "SERVER" and n["node_id"].startswith(n["tcp_address"] + "::") for n in nodes)
            replies = await asyncio.gather(*(devices.upload(ports[f], f, iteration, weights_of(f, iteration),
                                                            sizes[f]) for f in fl_ids))
            assert [r.retcode for r in replies] == [200] * DEVICES, [r.reason for r in replies]
            acked[iteration] = {f: (weights_of(f, iteration), sizes[f]) for f in fl_ids}
            answered[iteration] = set(ports.values())
            await devices.wait_iteration(servers.ports, iteration + 1, timeout_s=30)
        final = {p: {it: await devices.served_model(p, it) for it in range(ITERATIONS - 2, ITERATIONS + 1)}
                 for p in [first, *joiners]}
        for iteration in range(ITERATIONS - 2, ITERATIONS + 1):
            for name, values in handed.setdefault(iteration + 1, final[first][iteration]).items():
                assert np.array_equal(values, final[first][iteration][name]), (iteration, name)
            for port in joiners:
                for name in final[first][iteration]:
                    assert np.array_equal(final[port][iteration][name], final[first][iteration][name]), (
                        port, iteration, name)
        assert len(await sched.nodes()) == 3
    return acked, handed, answered


def test_servers_started_during_training_join_and_serve_the_next_iteration(tmp_path: Path) -> None:
    # Prepare
    fl_name = "scaleout"
    first, joiners = free_port(), [free_port(), free_port()]
    with EmbeddedRedis() as redis:
        yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=ITERATIONS, start_fl_job_threshold=DEVICES,
                        update_model_ratio=1.0, start_fl_job_time_window=20000, update_model_time_window=20000,
                        global_iteration_time_window=40000)
        servers = ServerProcs(yaml, redis.address, tmp_path)
        try:
            servers.start(first)
            # Execute
            acked, handed, answered = asyncio.run(train(servers, fl_name, first, joiners))
        except BaseException:
            print(servers.logs())
            raise
        finally:
            servers.stop_all()

    # Assert
    for iteration in range(JOIN_AT + 1, ITERATIONS + 1):
        assert answered[iteration] == {first, *joiners}
    for iteration in range(1, ITERATIONS + 1):  # the model handed out next = this iteration's weighted mean
        expect = weighted_mean(acked[iteration])
        for name in expect:
            assert np.allclose(handed[iteration + 1][name], expect[name], rtol=1e-5, atol=1e-6), (iteration, name)
    lines = metrics(tmp_path)
    assert [line["currentIteration"] for line in lines] == list(range(1, ITERATIONS + 1))
    assert all(line["iterationResult"] == "success" for line in lines), lines
    # the summary counts every server's visits (each flushes its counters before the writer reads them)
    assert [line["clientVisitedInfo"]["updateModelAcceptClientNum"] for line in lines] == [DEVICES] * ITERATIONS


async def join_after_a_failed_iteration(servers: ServerProcs, fl_name: str, first: int, joiner: int) -> tuple[
        dict[str, np.ndarray], dict[str, np.ndarray]]:
    async with scheduler(servers.yaml, servers.redis) as sched, aiohttp.ClientSession() as session:
        devices = Devices(session, fl_name)
        await devices.wait_iteration([first], 1, timeout_s=30)
        await devices.run_iteration([first], 2, 1)
        await sched.ok("/disableFLS")  # iteration 2 fails: the cluster's model stays the one of iteration 1

        async def disabled() -> bool:
            return await devices.start_fl_job(first, "dev000", 1, 1) == FINISHED

        await wait_for(disabled, 10, "disabled")
        await sched.ok("/enableFLS")
        await devices.wait_iteration([first], 3, timeout_s=10)
        servers.start(joiner)
        await devices.wait_iteration([joiner], 3, timeout_s=30)
        at_first, at_joiner = await asyncio.gather(devices.join(first, "dev000", 3, 1),
                                                   devices.join(joiner, "dev001", 3, 1))
        return ({t.name: np.array(t.data, copy=True) for t in at_first.feature_map},
                {t.name: np.array(t.data, copy=True) for t in at_joiner.feature_map})


def test_a_server_joining_after_a_failed_iteration_hands_out_the_cluster_model(tmp_path: Path) -> None:
    # Prepare
    fl_name = "joinafterfail"
    first, joiner = free_port(), free_port()
    with EmbeddedRedis() as redis:
        yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=5, start_fl_job_threshold=2, update_model_ratio=1.0)
        servers = ServerProcs(yaml, redis.address, tmp_path)
        try:
            servers.start(first)
            # Execute
            at_first, at_joiner = asyncio.run(join_after_a_failed_iteration(servers, fl_name, first, joiner))
        finally:
            servers.stop_all()

    # Assert
    assert any(np.any(v != 0) for v in at_first.values())  # the aggregate of iteration 1, not the initial zeros
    for name, values in at_first.items():
        assert np.array_equal(at_joiner[name], values), name
