"""The metrics line of an iteration a `/newInstance` cuts short (spec §6.1, §9): written once, under the instance the
iteration ran in, whichever server writes it: in a live switch of two server processes, and when the server that took
the summary lock dies before writing (another one takes over after the switch, with the old instance's counters)."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from tests.e2e.cluster_procs import Devices, Scheduler, ServerProcs, job_yaml, metrics, scheduler, wait_for

from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.cache.keys import JobKeys
from mindfed.server.instance import REASON_NEW_INSTANCE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]
DEVICES, HEARTBEAT_TTL_S = 2, 2
GHOST = "127.0.0.1:1::2024-01-01-00:00:00.000.000::11111"  # a server that took the lock and was killed
GHOST_LEASE_S = 2  # what was left of the lease it took


async def instance_name(client: aioredis.Redis, job: JobKeys) -> str:
    name = await client.get(job.instance_name)
    assert name is not None
    return str(name)


async def new_instance(sched: Scheduler, devices: Devices, client: aioredis.Redis, job: JobKeys, ports: list[int],
                       old: str) -> str:
    """/newInstance, then wait until every server serves iteration 1 of it; returns its name."""
    await sched.ok("/newInstance", "{}")
    new = await instance_name(client, job)
    assert new != old

    async def switched() -> bool:
        registered = await client.hkeys(job.instance(new).servers)
        seen = await asyncio.gather(*(devices.iteration_of(p) for p in ports))
        return len(registered) == len(ports) and seen == [1] * len(ports)

    await wait_for(switched, 30, f"every server on instance {new}")
    return new


async def join_all(devices: Devices, ports: list[int], iteration: int) -> None:
    """DEVICES devices join `iteration` (and upload nothing): the iteration has counters when it is cut short."""
    await asyncio.gather(*(devices.join(ports[i % len(ports)], f"late{i:03d}", iteration, 1) for i in range(DEVICES)))


async def settle(done: Callable[[], bool], timeout_s: float) -> None:
    """Wait (bounded) for the lines to be written; what is missing then is the assertions' to report."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def written(dirs: list[Path]) -> list[dict[str, Any]]:
    """The lines of every server's metrics.json."""
    return [line for folder in dirs for line in metrics(folder)]


async def scenario(yaml: Path, redis: str, fl_name: str, ports: list[int], dirs: list[Path]) -> tuple[
        dict[tuple[str, int], str], list[dict[str, Any]]]:
    """Trains over three instances; returns (instance, iteration) → the result its line must give, and the history
    of metrics lines in Redis."""
    job = JobKeys(fl_name)
    expected: dict[tuple[str, int], str] = {}
    async with scheduler(yaml, redis) as sched, aiohttp.ClientSession() as session, \
            aioredis.Redis.from_url(f"redis://{redis}", decode_responses=True) as client:
        devices = Devices(session, fl_name)
        await devices.wait_iteration(ports, 1, timeout_s=30)
        first = await instance_name(client, job)
        for iteration in (1, 2):
            await devices.run_iteration(ports, DEVICES, iteration)
            expected[(first, iteration)] = "success"
        # a live switch: both servers summarise iteration 3 of the first instance, one writes it
        await join_all(devices, ports, 3)
        second = await new_instance(sched, devices, client, job, ports, first)
        expected[(first, 3)] = "fail"
        await devices.run_iteration(ports, DEVICES, 1)
        expected[(second, 1)] = "success"
        # the writer of iteration 2 of the second instance took its lock and died: nobody renews its lease
        await join_all(devices, ports, 2)
        await client.set(job.instance(second).iteration(2).summary_lock, GHOST, ex=GHOST_LEASE_S)
        third = await new_instance(sched, devices, client, job, ports, second)
        expected[(second, 2)] = "fail"
        await devices.run_iteration(ports, DEVICES, 1)
        expected[(third, 1)] = "success"

        await devices.run_iteration(ports, DEVICES, 2)  # time for a second copy to be written, if one were
        expected[(third, 2)] = "success"
        await settle(lambda: set(expected) <= {(line["instanceName"], line["currentIteration"])
                                               for line in written(dirs)}, 15)
        # the history line follows the metrics.json line (summary.py `_publish`): wait for it too, not only the file
        deadline = time.monotonic() + 15
        while True:
            history = [json.loads(text) for text in await client.lrange(job.iteration_history, 0, -1)]
            seen = {(line["instanceName"], line["currentIteration"]) for line in history}
            if set(expected) <= seen or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    return expected, history


def check_lines(lines: list[dict[str, Any]], expected: dict[tuple[str, int], str], where: str) -> None:
    copies = collections.Counter((line["instanceName"], line["currentIteration"]) for line in lines)
    assert {key: n for key, n in copies.items() if n != 1} == {}, f"{where}: lines written more than once"
    assert set(copies) == set(expected), where
    for line in lines:
        key = (line["instanceName"], line["currentIteration"])
        assert line["iterationResult"] == expected[key], (where, key)
        if expected[key] == "fail":  # cut short by the new instance, with the counters of the instance it ran in
            assert line["iterationReason"] == REASON_NEW_INSTANCE, (where, key)
            assert line["clientVisitedInfo"]["startFLJobAcceptClientNum"] == DEVICES, (where, key)


def test_an_iteration_cut_short_by_a_new_instance_has_one_line_under_its_instance(tmp_path: Path) -> None:
    # Prepare: two server processes over one Redis, each with its own output folder (metrics.json)
    fl_name = "newinstsummary"
    ports = [free_port() for _ in range(2)]
    dirs = [tmp_path / f"server{i}" for i in range(2)]
    for folder in dirs:
        folder.mkdir()
    with EmbeddedRedis() as redis:
        yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=10, start_fl_job_threshold=DEVICES,
                        update_model_ratio=1.0, start_fl_job_time_window=20000, update_model_time_window=20000,
                        global_iteration_time_window=40000)
        servers = [ServerProcs(yaml, redis.address, folder, heartbeat_ttl_s=HEARTBEAT_TTL_S) for folder in dirs]
        try:
            for procs, port in zip(servers, ports, strict=True):
                procs.start(port)
            # Execute
            expected, history = asyncio.run(scenario(yaml, redis.address, fl_name, ports, dirs))
        except BaseException:
            for procs in servers:
                print(procs.logs())
            raise
        finally:
            for procs in servers:
                procs.stop_all()

    # Assert: over every server's metrics.json, and in the dashboard's history in Redis
    check_lines(written(dirs), expected, "metrics.json")
    check_lines(history, expected, "Redis history")
