"""Periodic checkpoints of this server's partial sums into Redis, trimming its write-ahead log.

Correctness does not depend on them (the log alone keeps every acknowledged update); they bound what Redis holds per
server to one partial sum plus the updates of the last period, instead of every update of the iteration.
"""

from __future__ import annotations

import asyncio
import logging

from mindfed.cache.durability import DurableUpdates
from mindfed.errors import CacheError
from mindfed.server.partials import PartialSums
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)


async def run_checkpoints(state: ServerState, period_s: float = 1.0) -> None:
    """Checkpoint whenever new updates were folded since the last checkpoint, at most once per `period_s`."""
    last: tuple[int, int] = (0, 0)
    while True:
        await asyncio.sleep(period_s)
        iteration, folded = state.iteration, len(state.accumulator.tags)
        if state.safemode or folded == 0 or (iteration, folded) == last:
            continue
        last = await checkpoint_once(state) or last


async def checkpoint_once(state: ServerState) -> tuple[int, int] | None:
    """Writes this server's partial sums of the current iteration to Redis now; (iteration, updates in it), or None
    when nothing was written (the iteration ended meanwhile, Redis is away, or the sums are unusable)."""
    iteration = state.iteration
    try:
        sums, data_sizes, tags = await state.accumulator.checkpoint()
        if state.iteration != iteration:
            return None  # the iteration ended meanwhile: its keys are being released
        blob = await asyncio.to_thread(PartialSums(sums, data_sizes, tags).encode)
        await DurableUpdates(state.store, state.instance, iteration, state.ttl).checkpoint(state.node_id, blob, tags)
        return iteration, len(tags)
    except (CacheError, RuntimeError) as exc:
        logger.debug("it %d: checkpoint skipped: %s", iteration, exc)
        return None
