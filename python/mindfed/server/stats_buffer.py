"""Summary counters gathered in memory per iteration and flushed to Redis in batches (one pipeline per tick).

Counting every request with its own Redis round trip would put Redis latency on every device response.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

from mindfed.cache.iteration import IterationCache


class StatsBuffer:
    """(instance, iteration) → pending increments. Event-loop only.

    Keyed by instance too: a request answered as a `/newInstance` switches belongs to the old instance's iteration,
    even when the flush that writes it runs after the switch (iteration numbers restart at 1).
    """

    def __init__(self) -> None:
        self._pending: defaultdict[tuple[str, int], Counter[str]] = defaultdict(Counter)

    def add(self, instance: str, iteration: int, increments: dict[str, float]) -> None:
        self._pending[(instance, iteration)].update(increments)

    async def flush(self, cache_of: Callable[[str, int], IterationCache]) -> None:
        """Write everything pending (`cache_of(instance, iteration)`); increments whose write fails stay pending for
        the next flush."""
        for key in sorted(self._pending):
            increments = self._pending.pop(key)
            if not increments:
                continue
            try:
                await cache_of(*key).add_stats(dict(increments))
            except BaseException:
                self._pending[key].update(increments)
                raise
