"""Per-iteration Redis state: admissions, update reservations, timers, summary statistics.

Everything a server needs to answer any device in the middle of an iteration lives here, so any server can take over
a device's next request (spec §3.6: Java devices spread their requests over servers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis

from mindfed.cache import keys as K
from mindfed.cache.store import CacheStore, Ttl, decoded
from mindfed.errors import CacheError

logger = logging.getLogger(__name__)

# Result codes of the admission scripts (see scripts/start_fl_job.lua and update_model.lua).
ADMITTED, THRESHOLD_REACHED, ALREADY_DONE, NO_DEVICE_META, CHECKED, NOT_IN_GET_SECRETS = 0, 1, 2, 3, 4, 5
SUMMARY_FINISHED = "Finish"  # MindSpore's value of the summary lock once the line is written


@dataclass(frozen=True, slots=True)
class DeviceMeta:
    """What startFLJob records about a device for the rest of the iteration."""

    fl_id: str
    data_size: int
    start_time_ms: int
    eval_data_size: int = 0

    def to_json(self) -> str:
        return json.dumps({"data_size": self.data_size, "now_time": self.start_time_ms,
                           "eval_data_size": self.eval_data_size})

    @classmethod
    def from_json(cls, fl_id: str, text: str) -> DeviceMeta:
        raw = json.loads(text)
        return cls(fl_id, int(raw["data_size"]), int(raw["now_time"]), int(raw.get("eval_data_size", 0)))


class IterationCache:
    """Redis operations of one iteration of one instance."""

    def __init__(self, store: CacheStore, instance: str, iteration: int, ttl: Ttl) -> None:
        self._store = store
        self.iteration = iteration
        self.keys = store.job.instance(instance).iteration(iteration)
        self._ttl = ttl

    @property
    def store(self) -> CacheStore:
        return self._store

    @property
    def _r(self) -> aioredis.Redis:
        return self._store.redis

    async def count(self, round_name: str) -> int:
        value = await self._store.run("read count", self._r.hget(self.keys.counts, round_name))
        return int(value or 0)

    async def counts(self) -> dict[str, int]:
        raw = await self._store.run("read counts", decoded(self._r.hgetall(self.keys.counts)))
        return {k: int(v) for k, v in raw.items()}

    async def timers(self) -> dict[str, int]:
        """Round name → ms timestamp of its first count (`startFLJob:closed` when the threshold was hit)."""
        raw = await self._store.run("read timers", decoded(self._r.hgetall(self.keys.timers)))
        return {k: int(v) for k, v in raw.items()}

    async def admit(self, meta: DeviceMeta, threshold: int, now_ms: int) -> tuple[int, int]:
        """Atomically admit a device to startFLJob; returns (code, count)."""
        code, count = await self._store.run("admit device", self._store.script("start_fl_job")(
            keys=[self.keys.counts, self.keys.device_metas, self.keys.timers],
            args=[threshold, meta.fl_id, meta.to_json(), now_ms, self._ttl.iteration_s]))
        return int(code), int(count)

    async def reserve_update(self, fl_id: str, node_id: str, threshold: int, now_ms: int, reserve: bool,
                             body: bytes | bytearray | None = None, pw: bool = False,
                             pw_round: str = "getSecrets") -> tuple[int, int, DeviceMeta | None]:
        """Gate, reserve and log this device's update in one atomic step; returns (code, count, device meta).

        `body` (the raw request) is written to `node_id`'s write-ahead log with the reservation, so every reserved
        update is durable (cache/durability.py). With `reserve` False the gate runs (threshold, meta) but nothing
        is reserved: the caller found the request invalid and needs the reason MindSpore's check order gives first.
        With `pw` only a device in the `pw_round` set is reserved (code NOT_IN_GET_SECRETS otherwise): getSecrets
        under PW_ENCRYPT, getKeys under STABLE_PW_ENCRYPT (a worker that never read its peers' keys cannot have masked).

        With `distributed_cache.replica_acks`, a reservation is kept only once that many replicas have it: a failover
        to one then keeps it too, so an update folded here can never be reserved (and folded) a second time after a
        failover. One that misses the deadline is undone here and reported as a cache failure (safemode).

        Raises:
            CacheError: Redis failed, or the reservation did not reach `replica_acks` replicas in time.
        """
        k = self.keys
        (code, count, meta), replicas = await self._store.replicated("reserve update", "update_model", keys=[
            k.counts, k.update_model_clients, k.per_server_counts(K.ROUND_UPDATE_MODEL), k.timers, k.device_metas,
            k.reserved(node_id), k.wal(node_id), k.pw_clients(pw_round)],
            args=[threshold, fl_id, node_id, now_ms, self._ttl.iteration_s, "0" if reserve else "1",
                  b"" if body is None else body, "1" if pw else "0"])
        if int(code) == ADMITTED and reserve and replicas < self._store.target.replica_acks:
            await self._store.run("release unreplicated update", self._store.script("release_update")(
                keys=[k.counts, k.update_model_clients, k.per_server_counts(K.ROUND_UPDATE_MODEL), k.reserved(node_id),
                      k.wal(node_id)], args=[fl_id, node_id]))
            raise CacheError(self._not_replicated("reservation", replicas))
        return int(code), int(count), (DeviceMeta.from_json(fl_id, meta) if meta else None)

    async def admitted_ids(self) -> list[str]:
        """The fl_ids startFLJob admitted to this iteration."""
        return list(await self._store.run("read admitted", decoded(self._r.hkeys(self.keys.device_metas))))

    def _not_replicated(self, what: str, replicas: int) -> str:
        target = self._store.target
        return (f"redis {what} on {target.display} reached {replicas} of the {target.replica_acks} replicas "
                f"distributed_cache.replica_acks asks for within {target.replica_ack_timeout_ms} ms")

    async def device_metas(self, fl_ids: list[str]) -> dict[str, DeviceMeta]:
        """fl_id → DeviceMeta for the devices that have one."""
        if not fl_ids:
            return {}
        raw = await self._store.run("read device metas", decoded(self._r.hmget(self.keys.device_metas, fl_ids)))
        return {fl_id: DeviceMeta.from_json(fl_id, text) for fl_id, text in zip(fl_ids, raw, strict=True) if text}

    async def folded_total(self) -> int:
        """Updates folded cluster-wide (sum of the per-server count_for_aggregation hash)."""
        raw = await self._store.run("read folded", self._r.hvals(self.keys.per_server_counts(K.ROUND_AGGREGATED)))
        return sum(int(v) for v in raw)

    async def mark_aggregated(self, node_id: str, count: int = 1) -> int:
        """Record that `count` reserved updates are folded on `node_id`; returns the cluster-wide folded count.

        The last write before the devices are answered SUCCEED: with `distributed_cache.replica_acks` it returns only
        once that many replicas hold it, and with it every earlier write (their reservations and logs included).

        Raises:
            CacheError: Redis failed, or the mark did not reach `replica_acks` replicas in time.
        """
        total, replicas = await self._store.replicated(
            "mark aggregated", "mark_aggregated", keys=[self.keys.per_server_counts(K.ROUND_AGGREGATED)],
            args=[node_id, self._ttl.iteration_s, count])
        if replicas < self._store.target.replica_acks:
            raise CacheError(self._not_replicated("folded count", replicas))
        return int(total)

    async def servers_with_updates(self) -> dict[str, int]:
        """node_id → number of updates it accepted this iteration."""
        raw = await self._store.run("read per-server updates", decoded(self._r.hgetall(
            self.keys.per_server_counts(K.ROUND_UPDATE_MODEL))))
        return {k: int(v) for k, v in raw.items()}

    async def add_stats(self, increments: Mapping[str, float]) -> None:
        """Add to the iteration's summary accumulators (request counts, loss and accuracy sums)."""
        async with self._r.pipeline(transaction=False) as pipe:
            for field, value in increments.items():
                if isinstance(value, int):
                    pipe.hincrby(self.keys.stats, field, value)
                else:
                    pipe.hincrbyfloat(self.keys.stats, field, value)
            pipe.expire(self.keys.stats, self._ttl.iteration_s)
            await self._store.run("add stats", pipe.execute())

    async def mark_flushed(self, node_id: str) -> None:
        """This server has written all its counters of the iteration (the summary writer waits for everyone)."""
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.flushed, node_id, 1)
            pipe.expire(self.keys.flushed, self._ttl.iteration_s)
            await self._store.run("mark flushed", pipe.execute())

    async def flushed(self) -> set[str]:
        return set(await self._store.run("read flushed", decoded(self._r.hkeys(self.keys.flushed))))

    async def stats(self) -> dict[str, float]:
        raw = await self._store.run("read stats", decoded(self._r.hgetall(self.keys.stats)))
        return {k: float(v) for k, v in raw.items()}

    async def take_summary_lock(self, node_id: str, lease_s: int) -> bool:
        """One server per iteration writes the summary (spec §9); it holds the lock for `lease_s` and renews it."""
        ok = await self._store.run("summary lock", self._r.set(
            self.keys.summary_lock, node_id, nx=True, ex=lease_s))
        return bool(ok)

    async def summary_lock_holder(self) -> str | None:
        """node_id holding the summary lock, SUMMARY_FINISHED once the line is written, None when no one holds it
        (its holder's lease ran out)."""
        return await self._store.run("read summary lock", decoded(self._r.get(self.keys.summary_lock)))

    async def renew_summary_lock(self, node_id: str, lease_s: int) -> bool:
        """Extend `node_id`'s lease; False when it no longer holds the lock (the lease ran out, or another took it)."""
        return bool(await self._store.run("renew summary lock", self._store.script("compare_and_set")(
            keys=[self.keys.summary_lock], args=[node_id, node_id, lease_s])))

    async def finish_summary_lock(self, node_id: str, keep_s: int) -> bool:
        """Mark the line written (MindSpore's value "Finish") for `keep_s`, if `node_id` holds the lock or no one
        does; False when another server holds it (it took over after `node_id`'s lease ran out)."""
        if await self._store.run("finish summary lock", self._store.script("compare_and_set")(
                keys=[self.keys.summary_lock], args=[node_id, SUMMARY_FINISHED, keep_s])):
            return True
        return bool(await self._store.run("finish summary lock", self._r.set(
            self.keys.summary_lock, SUMMARY_FINISHED, nx=True, ex=keep_s)))

    async def release(self, release_s: int = 60) -> None:
        """Let the finished iteration's keys expire soon (spec §5.2)."""
        async with self._r.pipeline(transaction=False) as pipe:
            for key in self.keys.all_keys():
                pipe.expire(key, release_s)
            await self._store.run("release iteration", pipe.execute())
