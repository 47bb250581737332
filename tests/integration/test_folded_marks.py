"""Folded-update counts share Redis round trips, and lose no count (server/folded_marks.py, real redis-server)."""

from __future__ import annotations

import asyncio

import pytest

from mindfed.cache.embedded import EmbeddedRedis
from mindfed.cache.iteration import IterationCache
from mindfed.cache.store import CacheStore, Ttl
from mindfed.errors import CacheError
from mindfed.server.folded_marks import FoldedMarks

pytestmark = pytest.mark.integration


class CountingCache(IterationCache):
    """The real IterationCache, recording the size of each mark it sends."""

    sent: list[int]

    async def mark_aggregated(self, node_id: str, count: int = 1) -> int:
        self.sent.append(count)
        return await super().mark_aggregated(node_id, count)


async def test_concurrent_marks_share_round_trips_and_all_count(redis_address: str, fl_name: str) -> None:
    # Prepare
    store = CacheStore.connect(redis_address, fl_name)
    cache = CountingCache(store, "i_test", 1, Ttl.from_window(30000))
    cache.sent = []
    marks = FoldedMarks()

    # Execute: 50 updates finish folding at once, on two servers
    totals = await asyncio.gather(*(marks.mark(cache, f"node{i % 2}") for i in range(50)))
    after = await cache.mark_aggregated("node0", 0)
    await store.close()

    # Assert: every update is counted once, fewer round trips than updates, and each caller saw a total that
    # includes its own update
    assert after == 50
    assert sum(cache.sent) == 50
    assert len(cache.sent) < 50
    assert all(1 <= total <= 50 for total in totals)
    assert max(totals) == 50


async def test_a_redis_failure_reaches_every_update_of_the_batch(fl_name: str) -> None:
    # Prepare: a store whose Redis is gone
    with EmbeddedRedis() as redis:
        address = redis.address
    store = CacheStore.connect(address, fl_name, timeout_s=0.5)
    cache = IterationCache(store, "i_test", 1, Ttl.from_window(30000))
    marks = FoldedMarks()

    # Execute
    results = await asyncio.gather(*(marks.mark(cache, "node0") for _ in range(5)), return_exceptions=True)
    await store.close()

    # Assert: nobody is told its update was counted
    assert all(isinstance(r, CacheError) for r in results)
