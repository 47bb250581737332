"""One metrics line per iteration over two servers (spec §9) while the server writing it is slow (a large recovery
checkpoint, a slow on_iteration_end): the other one must neither take the line over from a live writer nor, after a
`/newInstance` (spec §6.1), write it under the new instance."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.integration.cluster import Server, running_scheduler, running_server, ut_config, ut_model

from mindfed.cache.iteration import IterationCache
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.server.instance import REASON_NEW_INSTANCE
from mindfed.server.summary import IterationEnd
from mindfed.summary.metrics_file import read_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
HOLD_S = 3.0  # longer than a heartbeat is considered fresh (1.5 s) and than several summary-lock polls (0.5 s)


@contextlib.asynccontextmanager
async def two_servers(redis_address: str, fl_name: str, tmp_path: Path, slow_reason: str | None,
                      slow_iteration: int | None = None) -> AsyncIterator[tuple[Server, Server]]:
    """Two servers of one job, each with its own metrics.json; the writer of the chosen iteration end holds it
    HOLD_S in on_iteration_end, which it awaits before it marks the line finished."""

    async def hook(end: IterationEnd) -> None:
        if end.iteration_result == slow_reason or end.iteration_num == slow_iteration:
            await asyncio.sleep(HOLD_S)

    cfg = ut_config(redis_address, fl_name, fl_iteration_num=10)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with running_server(cfg, ut_model(), tmp_path / "a", on_iteration_end=hook) as a, \
            running_server(cfg, ut_model(), tmp_path / "b", on_iteration_end=hook) as b:
        yield a, b


async def train_one(server: Server, fl_id: str, iteration: int) -> None:
    job = parse_response_fl_job(await server.start_fl_job(fl_id, iteration=iteration - 1))
    assert (job.retcode, job.iteration) == (200, iteration)
    assert parse_response_update_model(await server.update_model(fl_id, iteration, {"feature_bn": [1.0]})).retcode \
        == 200


async def lines_settled(tmp_path: Path, count: int, timeout_s: float = 20.0) -> list[dict[str, object]]:
    """Both servers' lines once `count` are written and no summary write is left running (a hold ends)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        lines = read_all(tmp_path / "a" / "metrics.json") + read_all(tmp_path / "b" / "metrics.json")
        if len(lines) >= count:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(HOLD_S + 1.0)  # a second copy, if a takeover started one, is written by now
    return read_all(tmp_path / "a" / "metrics.json") + read_all(tmp_path / "b" / "metrics.json")


async def history(server: Server) -> list[dict[str, object]]:
    store = server.node.state.store  # type: ignore[union-attr]
    return [json.loads(text) for text in await store.redis.lrange(store.job.iteration_history, 0, -1)]


def copies(lines: list[dict[str, object]]) -> dict[tuple[object, object], int]:
    return dict(collections.Counter((line["instanceName"], line["currentIteration"]) for line in lines))


async def test_a_slow_writer_of_an_iteration_switch_is_not_taken_over(redis_address: str, fl_name: str,
                                                                     tmp_path: Path) -> None:
    async with two_servers(redis_address, fl_name, tmp_path, None, slow_iteration=1) as (a, b):
        instance = a.node.state.instance  # type: ignore[union-attr]
        await train_one(a, "1001", 1)
        await a.wait_iteration(2)
        await b.wait_iteration(2)
        lines = await lines_settled(tmp_path, 1)
        kept = await history(a)
    assert copies(lines) == {(instance, 1): 1}
    assert copies(kept) == {(instance, 1): 1}


async def test_a_slow_writer_of_a_new_instance_switch_writes_the_only_line(redis_address: str, fl_name: str,
                                                                          tmp_path: Path) -> None:
    async with two_servers(redis_address, fl_name, tmp_path, REASON_NEW_INSTANCE) as (a, b), \
            running_scheduler(a.node.config) as sched:
        old = a.node.state.instance  # type: ignore[union-attr]
        await train_one(a, "1001", 1)
        await a.wait_iteration(2)
        await b.wait_iteration(2)
        await b.start_fl_job("1002", iteration=1)  # iteration 2 has a count when the new instance cuts it short
        await sched.ok("/newInstance", "{}")
        lines = await lines_settled(tmp_path, 2)
        new = a.node.state.instance  # type: ignore[union-attr]
        kept = await history(a)
    assert new != old
    assert copies(lines) == {(old, 1): 1, (old, 2): 1}
    assert copies(kept) == {(old, 1): 1, (old, 2): 1}
    cut = next(line for line in lines if line["currentIteration"] == 2)
    assert (cut["iterationResult"], cut["iterationReason"]) == ("fail", REASON_NEW_INSTANCE)
    assert cut["clientVisitedInfo"]["startFLJobAcceptClientNum"] == 1  # type: ignore[index]


async def test_a_request_answered_during_a_new_instance_switch_counts_in_the_old_instance(
        redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # A device asks while the server writes the line of the iteration the new instance cuts short (safemode): its
    # visit belongs to that iteration of the old instance, not to the new instance's iteration of the same number.
    holding, answered = asyncio.Event(), asyncio.Event()

    async def hook(end: IterationEnd) -> None:
        if end.iteration_result == REASON_NEW_INSTANCE:
            holding.set()
            await asyncio.wait_for(answered.wait(), 10)

    cfg = ut_config(redis_address, fl_name, fl_iteration_num=10)
    async with running_server(cfg, ut_model(), tmp_path, on_iteration_end=hook) as server, \
            running_scheduler(cfg) as sched:
        state = server.node.state
        assert state is not None
        old = state.instance
        await sched.ok("/newInstance", "{}")
        await asyncio.wait_for(holding.wait(), 10)
        assert await server.start_fl_job("late", iteration=0) == b"The cluster is in safemode."
        answered.set()
        await server.wait_iteration(1)
        while state.instance == old:
            await asyncio.sleep(0.01)
        await train_one(server, "1001", 1)  # the new instance's iteration 1: one startFLJob
        await server.wait_iteration(2)
        await asyncio.sleep(0.3)  # a few ticks: every pending counter is flushed
        late = await IterationCache(state.store, old, 1, state.ttl).stats()
    lines = read_all(tmp_path / "metrics.json")
    new_line = next(line for line in lines if line["instanceName"] == state.instance)
    assert new_line["clientVisitedInfo"]["startFLJobTotalClientNum"] == 1
    assert late["startFLJob:total"] == 1
