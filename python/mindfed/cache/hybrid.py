"""The worker's part of a HYBRID_TRAINING iteration in Redis (spec §11.1), so that any server answers any worker.

Three per-iteration keys, each written once: the devices' aggregate (by the server that combined them), the first
worker's pushWeight (SET NX: later pushes of the iteration are told it has finished, as MindSpore), and the first
pushMetrics (SET NX). Each has the iteration TTL (they are in `IterationKeys.all_keys`), so a crashed node never
leaves one behind.
"""

from __future__ import annotations

import json
from typing import cast

from mindfed.cache.durability import Blob, _view
from mindfed.cache.store import CacheStore, Ttl


class HybridIteration:
    """Redis operations of the worker's rounds of one iteration.

    Args:
        store: the job's store.
        instance: the instance name.
        iteration: the iteration.
        ttl: the TTL policy (the keys get the iteration TTL).
    """

    def __init__(self, store: CacheStore, instance: str, iteration: int, ttl: Ttl) -> None:
        self._store = store
        self.iteration = iteration
        self.keys = store.job.instance(instance).iteration(iteration)
        self._ttl = ttl

    async def store_aggregate(self, blob: Blob) -> None:
        """The devices' aggregate of the iteration (server/partials.py model encoding)."""
        await self._store.run("store hybrid aggregate", self._store.binary.set(
            self.keys.hybrid_aggregate, _view(blob), ex=self._ttl.iteration_s))

    async def aggregated(self) -> bool:
        """Whether the devices' aggregate is stored (the combine of the iteration is done)."""
        return bool(await self._store.run("read hybrid aggregate", self._store.binary.exists(
            self.keys.hybrid_aggregate)))

    async def aggregate(self) -> bytes | None:
        return cast("bytes | None", await self._store.run("read hybrid aggregate", self._store.binary.get(
            self.keys.hybrid_aggregate)))

    async def push(self, blob: Blob) -> bool:
        """Store a worker's weights as the iteration's model; False when another push came first."""
        return bool(await self._store.run("store pushWeight", self._store.binary.set(
            self.keys.hybrid_pushed, _view(blob), nx=True, ex=self._ttl.iteration_s)))

    async def pushed(self) -> bytes | None:
        return cast("bytes | None", await self._store.run("read pushWeight", self._store.binary.get(
            self.keys.hybrid_pushed)))

    async def has_pushed(self) -> bool:
        return bool(await self._store.run("read pushWeight", self._store.binary.exists(self.keys.hybrid_pushed)))

    async def current(self) -> bytes | None:
        """What pullWeight serves: the pushed weights once a worker pushed (as MindSpore's buffer after pushWeight),
        else the devices' aggregate, else None (not aggregated yet)."""
        return await self.pushed() or await self.aggregate()

    async def record_metrics(self, loss: float, accuracy: float) -> bool:
        """Keep the iteration's loss and accuracy; False when a pushMetrics was already recorded (the first wins)."""
        text = json.dumps({"loss": loss, "accuracy": accuracy})
        return bool(await self._store.run("store pushMetrics", self._store.redis.set(
            self.keys.hybrid_metrics, text, nx=True, ex=self._ttl.iteration_s)))

    async def metrics(self) -> tuple[float, float] | None:
        """(loss, accuracy) of the iteration's pushMetrics, or None when none came."""
        text = await self._store.run("read pushMetrics", self._store.redis.get(self.keys.hybrid_metrics))
        if text is None:
            return None
        raw = json.loads(text)
        return float(raw["loss"]), float(raw["accuracy"])
