"""The job's recent iterations in Redis: the metrics line of each, as the summary writer appended it to metrics_file.

Servers keep their metrics_file on their own disk; the scheduler (and its dashboard) can reach only Redis, so the one
server that writes an iteration's line also appends it here. The list is bounded (`HISTORY_KEEP` lines) and expires
with the job's configuration keys when nothing is written for that long.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from mindfed.cache.store import CacheStore

logger = logging.getLogger(__name__)

HISTORY_KEEP = 500  # lines; at ~700 bytes a line, about 350 KB of Redis per job


class IterationHistory:
    """Append to and read the bounded list of metrics lines (`JobKeys.iteration_history`) of the store's job.

    Args:
        store: the store, bound to the job.
        keep: how many lines the list keeps (the oldest are dropped first).

    Raises:
        ValueError: `keep` < 1.
    """

    def __init__(self, store: CacheStore, keep: int = HISTORY_KEEP) -> None:
        if keep < 1:
            raise ValueError(f"the iteration history must keep at least 1 line, not {keep}")
        self._store, self._keep = store, keep

    async def append(self, line: str, ttl_s: int) -> None:
        """Add one metrics line (JSON text, no newline) and trim the list to `keep`, in one transaction.

        Args:
            line: the iteration's metrics line (`summary.metrics_file.encode_line`, stripped).
            ttl_s: the list's time to live from now (the job's config TTL, spec §5.3).

        Raises:
            CacheError: Redis cannot be reached.
        """
        key = self._store.job.iteration_history
        async with self._store.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, line)
            pipe.ltrim(key, -self._keep, -1)
            pipe.expire(key, ttl_s)
            await self._store.run("append iteration history", pipe.execute())

    async def latest(self, count: int) -> list[dict[str, Any]]:
        """The newest `count` (at most `keep`) lines, oldest first; lines that are not a JSON object are skipped.

        Raises:
            CacheError: Redis cannot be reached.
        """
        count = max(1, min(count, self._keep))
        raw = await self._store.run("read iteration history",
                                    self._store.redis.lrange(self._store.job.iteration_history, -count, -1))
        lines: list[dict[str, Any]] = []
        for text in raw:
            try:
                line = json.loads(text)
            except ValueError:
                line = None
            if isinstance(line, dict):
                lines.append(line)
            else:
                logger.warning("iteration history of %s holds a line that is not a JSON object; skipped",
                               self._store.job.fl_name)
        return lines
