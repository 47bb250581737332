"""Durable updates: what lets an iteration keep every acknowledged update when the server holding it dies.

Each server logs an accepted update's raw body in Redis with its reservation, before folding and acknowledging it
(write-ahead log; `update_model.lua`),
and every so often replaces the logged updates by one checkpoint of its partial sums (atomically: the checkpoint and
the log trimming are one MULTI). So at any moment a server's acknowledged updates are exactly
checkpoint ∪ log, readable by any other server, and Redis memory per server is bounded by one partial sum plus the
updates since the last checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from mindfed.cache import keys as K
from mindfed.cache.large_values import Command, transaction
from mindfed.cache.store import CacheStore, Ttl, decoded

if TYPE_CHECKING:
    from typing_extensions import Buffer

Blob = bytes | bytearray | memoryview | np.ndarray  # anything with a contiguous buffer

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeUpdates:
    """One server's durable updates of an iteration: a checkpoint blob (or None) and the logged bodies after it."""

    checkpoint: bytes | None
    logged: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class Repair:
    """Result of taking over a dead server: reservations released, updates kept, cluster folded count after."""

    released: int
    kept: int
    folded: int
    already_done: bool


def _view(blob: Blob) -> memoryview:
    """`memoryview(blob)`: ndarray has the buffer protocol, but numpy's stubs declare it only for Python >= 3.12."""
    return memoryview(cast("Buffer", blob))


class DurableUpdates:
    """Redis operations of the durability protocol for one iteration."""

    def __init__(self, store: CacheStore, instance: str, iteration: int, ttl: Ttl) -> None:
        self._store = store
        self.keys = store.job.instance(instance).iteration(iteration)
        self._inst = store.job.instance(instance)
        self._ttl = ttl

    async def checkpoint(self, node_id: str, blob: Blob, tags: Sequence[str]) -> None:
        """Replace the logged updates named by `tags` with `blob` (partial sums that contain them), atomically."""
        k = self.keys
        commands: list[Command] = [("SET", k.partial(node_id), _view(blob), "EX", self._ttl.iteration_s),
                                   ("DEL", k.checkpoint_tags(node_id))]
        if tags:
            commands += [("SADD", k.checkpoint_tags(node_id), *tags), ("HDEL", k.wal(node_id), *tags)]
        commands.append(("EXPIRE", k.checkpoint_tags(node_id), self._ttl.iteration_s))
        await self._store.run("checkpoint partial sums", transaction(self._store.binary, commands))

    async def read(self, node_id: str) -> NodeUpdates:
        """`node_id`'s checkpoint and log, read in one MULTI so a concurrent checkpoint cannot be seen half-done."""
        async with self._store.binary.pipeline(transaction=True) as pipe:
            pipe.get(self.keys.partial(node_id))
            pipe.hgetall(self.keys.wal(node_id))
            blob, logged = await self._store.run("read durable updates", pipe.execute())
        return NodeUpdates(blob, {k.decode(): v for k, v in logged.items()})

    async def repair(self, dead_node: str) -> Repair:
        """Take over a dead server's updates (once per node and iteration): see scripts/repair_server.lua."""
        k = self.keys
        released, kept, folded = await self._store.run("repair dead server", self._store.script("repair_server")(
            keys=[k.counts, k.update_model_clients, k.per_server_counts(K.ROUND_UPDATE_MODEL),
                  k.per_server_counts(K.ROUND_AGGREGATED), k.reserved(dead_node), k.wal(dead_node),
                  k.checkpoint_tags(dead_node), k.repaired],
            args=[dead_node, self._ttl.iteration_s]))
        return Repair(max(int(released), 0), int(kept), int(folded), int(released) < 0)

    async def repaired(self) -> set[str]:
        return set(await self._store.run("read repaired", decoded(self._store.redis.hkeys(self.keys.repaired))))

    async def claim_aggregator(self, node_id: str, lease_s: int = 15) -> bool:
        """True for the one server that combines this iteration's partial sums.

        The role is a lease: if its holder dies while combining, another server takes over after `lease_s`.
        """
        return bool(await self._store.run("claim aggregator", self._store.redis.set(
            self.keys.aggregator, node_id, nx=True, ex=lease_s)))

    async def release_aggregator(self, node_id: str) -> None:
        """Give the aggregator role back (after a failed attempt) so another trigger can retry."""
        if await self._store.run("read aggregator", self._store.redis.get(self.keys.aggregator)) == node_id:
            await self._store.run("release aggregator", self._store.redis.delete(self.keys.aggregator))

    async def publish_model(self, iteration: int, blob: Blob) -> None:
        """The new global model, for every server of the instance (and any that joins later)."""
        await self._store.run("publish model", transaction(self._store.binary, [
            ("HSET", self._inst.model, "iteration", str(iteration), "blob", _view(blob)),
            ("EXPIRE", self._inst.model, self._ttl.config_s)]))

    async def release(self, node_ids: Sequence[str], release_s: int = 1) -> None:
        """Let the durable keys of `node_ids` for this (ended) iteration expire after `release_s`.

        Nobody reads them once the iteration has ended: its model is published, or it failed and its updates are
        dropped. They hold what the last checkpoint had not yet trimmed, usually most of the iteration's bodies
        (8 × 40 MB updates: 280 MB of log per iteration), so they get a second, not the 60 s that MindSpore's
        client keys get (spec §5.2, `IterationCache.release`).
        """
        async with self._store.binary.pipeline(transaction=False) as pipe:
            for node in node_ids:
                for key in self.keys.node_keys(node):
                    pipe.expire(key, release_s)
            await self._store.run("release durable updates", pipe.execute())


async def read_model(store: CacheStore, instance: str) -> tuple[int, bytes] | None:
    """(iteration, blob) of the newest published model of `instance`, or None."""
    iteration, blob = await store.run("read model", store.binary.hmget(store.job.instance(instance).model,
                                                                       ["iteration", "blob"]))
    if iteration is None or blob is None:
        return None
    return int(iteration), cast(bytes, blob)  # the binary client (decode_responses=False) returns bytes
