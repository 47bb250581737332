"""Counting folded updates in Redis with one round trip for all the updates that finish folding together.

Every acknowledged update must be counted as folded before its device is answered (docs/cluster.md), and under load
many finish folding within one Redis round trip of each other: they share a single `mark_aggregated` of their count.
"""

from __future__ import annotations

import asyncio

from mindfed.cache.iteration import IterationCache


class FoldedMarks:
    """Batches `mark_aggregated` per iteration: a mark that arrives while one is in flight goes out with the next."""

    def __init__(self) -> None:
        # keyed by the iteration's count hash, which names the instance and the iteration
        self._waiting: dict[str, list[asyncio.Future[int]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def mark(self, cache: IterationCache, node_id: str) -> int:
        """Counts one update folded on `node_id` in `cache`'s iteration; returns the cluster-wide folded count.

        Raises:
            CacheError: Redis failed; every update of the same batch gets it.
        """
        key = cache.keys.counts
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(waiter)
        if key not in self._senders:
            self._senders[key] = asyncio.create_task(self._send(key, cache, node_id), name="folded-marks")
        return await waiter

    async def _send(self, key: str, cache: IterationCache, node_id: str) -> None:
        batch: list[asyncio.Future[int]] = []
        try:
            while batch := self._waiting.pop(key, []):
                try:
                    total = await cache.mark_aggregated(node_id, len(batch))
                except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                    for waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(exc)
                else:
                    for waiter in batch:
                        if not waiter.done():
                            waiter.set_result(total)
        finally:
            del self._senders[key]
            for waiter in [*batch, *self._waiting.pop(key, [])]:  # cancelled (shutdown): nobody is left waiting
                waiter.cancel()
