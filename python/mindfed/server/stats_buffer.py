"""Summary counters gathered in memory per iteration and flushed to Redis in batches (one pipeline per tick).

Counting every request with its own Redis round trip would put Redis latency on every device response.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

from mindfed.cache.iteration import IterationCache


class StatsBuffer:
    """iteration → pending increments. Event-loop only."""

    def __init__(self) -> None:
        self._pending: defaultdict[int, Counter[str]] = defaultdict(Counter)

    def add(self, iteration: int, increments: dict[str, float]) -> None:
        self._pending[iteration].update(increments)

    async def flush(self, cache_of: Callable[[int], IterationCache]) -> None:
        """Write everything pending; increments whose write fails stay pending for the next flush."""
        for iteration in sorted(self._pending):
            increments = self._pending.pop(iteration)
            if not increments:
                continue
            try:
                await cache_of(iteration).add_stats(dict(increments))
            except BaseException:
                self._pending[iteration].update(increments)
                raise
