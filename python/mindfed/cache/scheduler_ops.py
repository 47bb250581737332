"""The Redis operations of the scheduler's management API (spec §6.1) and its dashboard, over one `CacheStore`.

The scheduler keeps nothing in memory: every answer is read from Redis and every command is written there, so a
restarted scheduler (or a second one) sees exactly the same cluster. The servers react to what is written here on
their next tick: `runningState` in the status hash, and the job's instance name.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from importlib import resources
from typing import Any

from mindfed.cache import keys as K
from mindfed.cache.iteration_history import IterationHistory
from mindfed.cache.store import RUNNING, CacheStore, InstanceStatus
from mindfed.cache.workers import alive_workers

logger = logging.getLogger(__name__)


class SetStateResult(IntEnum):
    """Codes of `scripts/scheduler_set_running_state.lua`."""

    SET = 0
    FINISHED = 1
    ALREADY = 2
    NO_STATUS = 3


def make_instance_name(now: datetime | None = None) -> str:
    """MindSpore's instance name: `i_` + local time to the microsecond (`i_2024-05-01-12:00:00.123.456`)."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%d-%H:%M:%S.%f")
    return f"i_{stamp[:-3]}.{stamp[-3:]}"


def _script_text(name: str) -> str:
    return resources.files("mindfed.cache").joinpath("scripts", name).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """What /state and /queryInstance report: the instance, its running state, its live servers and hybrid workers."""

    instance: str
    running_state: int
    servers: dict[str, str]
    workers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RoundProgress:
    """One iteration's counters as they stand: cluster-wide round counts, and per server (node_id → count) the updates
    it accepted and folded; `timers`: round name → ms timestamp of the round's first count; `visits`: round name →
    (responses sent, successes) so far, as the servers flush them every tick (what metrics_file will sum up)."""

    counts: dict[str, int]
    updates_by_server: dict[str, int]
    folded_by_server: dict[str, int]
    timers: dict[str, int]
    visits: dict[str, tuple[int, int]]


def _ints(raw: Mapping[str, str]) -> dict[str, int]:
    """A hash of counters; a field that is not an integer (not ours) is left out rather than failing the read."""
    out: dict[str, int] = {}
    for name, value in raw.items():
        with contextlib.suppress(ValueError):
            out[str(name)] = int(value)
    return out


class SchedulerCache:
    """Reads and commands of the management API, for the job the store is bound to.

    Every method raises `CacheError` when Redis cannot be reached; none keeps state between calls.
    """

    def __init__(self, store: CacheStore) -> None:
        self._store = store
        self._set_state = store.redis.register_script(_script_text("scheduler_set_running_state.lua"))
        self._new_instance = store.redis.register_script(_script_text("scheduler_new_instance.lua"))

    @property
    def fl_name(self) -> str:
        return self._store.job.fl_name

    async def instance_name(self) -> str | None:
        """The job's current instance, or None when no server has ever created one (or it expired)."""
        return await self._store.current_instance()

    async def running_state(self, instance: str) -> int:
        """`runningState` of the instance; Running when the field is missing, as MindSpore's HGet default."""
        raw = await self._store.run("get running state", self._store.redis.hget(
            self._store.job.instance(instance).status, "runningState"))
        return int(raw) if raw is not None else RUNNING

    async def alive_servers(self, instance: str) -> dict[str, str]:
        """node_id → tcp address of servers whose heartbeat is alive (dead entries are dropped, as MindSpore)."""
        return await self._store.alive_servers(instance)

    async def alive_workers(self, instance: str) -> list[str]:
        """Ids of the instance's workers whose heartbeat is alive, sorted (dead entries are dropped)."""
        return await alive_workers(self._store, instance)

    async def snapshot(self) -> ClusterSnapshot | None:
        """The current instance with its state and live servers, or None when the job has no instance."""
        instance = await self.instance_name()
        if not instance:
            return None
        state = await self.running_state(instance)
        servers = await self.alive_servers(instance)
        workers = await self.alive_workers(instance)
        return ClusterSnapshot(instance, state, servers, tuple(workers))

    async def status(self, instance: str) -> InstanceStatus | None:
        """The instance status hash (iteration, running state, last iteration's result); None when it is gone."""
        return await self._store.read_status(instance)

    async def round_progress(self, instance: str, iteration: int) -> RoundProgress:
        """The live counters of `iteration` (spec §4.1, §4.2), read in one round trip."""
        keys = self._store.job.instance(instance).iteration(iteration)
        async with self._store.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.counts)
            pipe.hgetall(keys.per_server_counts(K.ROUND_UPDATE_MODEL))
            pipe.hgetall(keys.per_server_counts(K.ROUND_AGGREGATED))
            pipe.hgetall(keys.timers)
            pipe.hgetall(keys.stats)
            counts, updates, folded, timers, stats = await self._store.run("read round progress", pipe.execute())
        stats = _ints(stats)
        visits = {r: (stats.get(K.visits_total(r), 0), stats.get(K.visits_accept(r), 0)) for r in K.SUMMARY_ROUNDS}
        return RoundProgress(_ints(counts), _ints(updates), _ints(folded), _ints(timers), visits)

    async def history(self, count: int) -> list[dict[str, Any]]:
        """The metrics lines of the job's latest `count` finished iterations, oldest first (every instance)."""
        return await IterationHistory(self._store).latest(count)

    async def hyper_params_text(self, instance: str) -> str | None:
        """The instance's hyper-parameter JSON text (spec §2.10), or None when missing."""
        text = await self._store.run("get hyper params", self._store.redis.get(
            self._store.job.instance(instance).hyper_params))
        return text if isinstance(text, str) or text is None else text.decode()

    async def set_running_state(self, instance: str, state: int) -> SetStateResult:
        """Compare-and-set of `runningState` (see the script for the refusals)."""
        code, _previous = await self._store.run("set running state", self._set_state(
            keys=[self._store.job.instance(instance).status], args=[state]))
        return SetStateResult(int(code))

    async def switch_instance(self, expected: str, new_instance: str, hyper_params_json: str, ttl_s: int) -> bool:
        """Publish `hyper_params_json` under `new_instance` and make it current, if `expected` is still current."""
        switched = await self._store.run("new instance", self._new_instance(
            keys=[self._store.job.instance_name, self._store.job.instance(new_instance).hyper_params],
            args=[expected, new_instance, hyper_params_json, ttl_s]))
        if switched:
            logger.info("job %s: instance %s -> %s", self.fl_name, expected, new_instance)
        return bool(switched)
