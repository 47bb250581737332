"""Periodic checkpoints of this server's partial sums into Redis, trimming its write-ahead log.

Correctness does not depend on them (the log alone keeps every acknowledged update); they bound what Redis holds per
server to one partial sum plus the updates of the last period, instead of every update of the iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import numpy as np

from mindfed.aggregation.accumulator import IterationAccumulator
from mindfed.cache.durability import DurableUpdates
from mindfed.errors import CacheError
from mindfed.server.partials import PartialSums, Scratch
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)


async def run_checkpoints(state: ServerState, period_s: float = 1.0) -> None:
    """Checkpoint whenever new updates were folded since the last checkpoint, at most once per `period_s`; and at
    once when the copies peers hold for us ask for it (update_log replica: server/replicas.py)."""
    last: tuple[int, int] = (0, 0)
    wanted = state.replicator.checkpoint_wanted if state.replicator is not None else None
    while True:
        if wanted is None:
            await asyncio.sleep(period_s)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wanted.wait(), period_s)
            wanted.clear()
        iteration, folded = state.iteration, len(state.accumulator.tags)
        if state.safemode or folded == 0 or ((iteration, folded) == last and not await _holder_lost(state)):
            continue
        last = await checkpoint_once(state) or last


async def _holder_lost(state: ServerState) -> bool:
    """update_log replica: a holder of our copies has died, so what it kept must be checkpointed again elsewhere."""
    if state.replicator is None:
        return False
    try:
        return await state.replicator.exposed(state.instance, state.iteration)
    except CacheError:
        return False  # Redis is away: no checkpoint could be written either


async def encode_live(accumulator: IterationAccumulator,
                      into: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """A checkpoint's blob and the tags it holds, encoded straight from the live sums while no fold runs (into
    `into` when it fits): one copy, where a snapshot first would be a second."""
    return await accumulator.export(
        lambda sums, data_sizes, tags: (PartialSums(sums, data_sizes, tags).encode(into), list(tags)))


async def checkpoint_once(state: ServerState) -> tuple[int, int] | None:
    """Writes this server's partial sums of the current iteration to Redis now; (iteration, updates in it), or None
    when nothing was written (the iteration ended meanwhile, Redis is away, or the sums are unusable).

    One at a time (`state.checkpoint_lock`): the periodic one and a stop's last one must not overlap, or the older
    could be stored after the newer had trimmed the log (and the copies) of the updates only the newer holds. The
    lock also lends the checkpoint `state.scratch`, the encode buffer it reuses.
    """
    async with state.checkpoint_lock:
        return await _checkpoint(state, state.scratch)


async def _checkpoint(state: ServerState, scratch: Scratch) -> tuple[int, int] | None:
    iteration = state.iteration
    try:
        blob, tags = await encode_live(state.accumulator, scratch.buffer)
        scratch.fit(blob)
        if state.iteration != iteration:
            return None  # the iteration ended meanwhile: its keys are being released
        marker = None
        if state.replicator is not None:  # update_log replica: a peer keeps the checkpoint, Redis a marker of it
            marker = await state.replicator.hold_checkpoint(state.instance, iteration, blob)
            if state.replicator.failed:
                scratch.abandon()  # a copy that timed out may still be reading it: encode elsewhere next time
        with scratch.writing():
            await DurableUpdates(state.store, state.instance, iteration, state.ttl).checkpoint(
                state.node_id, blob if marker is None else marker, tags)
        if state.replicator is not None:  # the checkpoint holds them now: the holders drop their copies
            await state.replicator.checkpointed(state.instance, iteration, tags, marker)
        return iteration, len(tags)
    except (CacheError, RuntimeError) as exc:
        logger.debug("it %d: checkpoint skipped: %s", iteration, exc)
        return None
