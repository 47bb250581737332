"""Folds clients' model updates into per-parameter sums: off the event loop, in groups, bounded.

The arithmetic runs in C++ (`_core.agg`) on a worker thread. Updates that arrive while a fold is
running wait in a short queue and are folded together (up to `max_group` per pass over the
accumulator), which moves the accumulator across the memory bus once per group instead of once
per client: on a memory-bound machine that is the difference between ~0.6 and ~0.8 of the STREAM
triad bandwidth. The queue is bounded (`max_pending`), so memory stays O(model + a few updates)
however many clients upload at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from mindfed import _core

logger = logging.getLogger(__name__)

F32Array = npt.NDArray[np.float32]
T = TypeVar("T")
# Folds of at most this many coordinates run on the event loop: for a LeNet-size update (66k floats, ~20 us of
# adds) the hop to a worker thread and back costs more than the fold; larger ones release the GIL on a worker.
INLINE_FOLD_FLOATS = 262_144


@dataclass(frozen=True, slots=True)
class FoldStats:
    """Counters since the accumulator was made.

    Attributes:
        updates_folded: Updates whose fold has finished.
        fold_passes: Worker passes; updates_folded / fold_passes is the mean group size.
        peak_pending: Most updates admitted and not yet folded at one time (<= max_pending).
    """

    updates_folded: int
    fold_passes: int
    peak_pending: int


@dataclass(slots=True)
class _Pending:
    """One admitted update waiting for the worker; `done` resolves once it is in the sums."""

    update: dict[str, F32Array]
    data_size: int
    weight: float
    done: asyncio.Future[None]
    tag: str | None = None
    decode: Callable[[Mapping[str, F32Array]], None] | None = None  # adds itself into the sums (add_decoded)
    decode_names: tuple[str, ...] = ()


class IterationAccumulator:
    """Sums of weighted client updates for one iteration, per parameter name.

    Thread-safety: not thread-safe. An instance belongs to one asyncio event loop and every
    method must be called from that loop's thread; the folding itself runs on a worker thread
    that only this class drives, and never concurrently with finalize/reset/snapshot.

    Args:
        sizes: Element count of every parameter (name -> number of float32 values).
        max_group: Most waiting updates folded in one pass over the accumulator (>= 1).
        max_pending: Most updates admitted but not yet folded (>= 1); further add() calls wait.

    Raises:
        ValueError: A size is negative or max_group/max_pending is below 1.
    """

    def __init__(self, sizes: Mapping[str, int], max_group: int = 8, max_pending: int = 16) -> None:
        if max_group < 1 or max_pending < 1:
            raise ValueError(f"max_group={max_group} and max_pending={max_pending} must both be >= 1")
        for name, size in sizes.items():
            if size < 0:
                raise ValueError(f"parameter {name!r} has negative size {size}")
        self._sizes = dict(sizes)
        self._sums = {name: np.zeros(size, dtype=np.float32) for name, size in self._sizes.items()}
        self._data_sizes = dict.fromkeys(self._sizes, 0)
        self._tags: list[str] = []
        self._max_group = max_group
        self._max_pending = max_pending
        self._slots = asyncio.Semaphore(max_pending)
        self._fold_lock = asyncio.Lock()  # held while the worker thread writes the sums
        self._queue: collections.deque[_Pending] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._stats = FoldStats(updates_folded=0, fold_passes=0, peak_pending=0)
        self._failure: BaseException | None = None
        self._lent = False  # lend() handed the live sums out: no fold until reset(), which then allocates new ones

    @property
    def sizes(self) -> dict[str, int]:
        """Element count per parameter name (a copy)."""
        return dict(self._sizes)

    @property
    def data_sizes(self) -> dict[str, int]:
        """Sum of the data sizes of the updates folded so far, per parameter name (a copy)."""
        return dict(self._data_sizes)

    @property
    def pending(self) -> int:
        """Updates admitted by add() whose fold has not finished (never above max_pending)."""
        return self._in_flight

    @property
    def stats(self) -> FoldStats:
        """Fold counters since construction."""
        return self._stats

    async def add(self, update: Mapping[str, F32Array], data_size: int, weight: float = 1.0,
                  tag: str | None = None) -> None:
        """Adds `weight * update[name]` to the sum of every name in `update` and returns when done.

        MindSpore devices upload weights already multiplied by their data size, so the server
        passes weight=1.0. The arrays are borrowed, not copied: the caller must not change them
        until this returns. Cancelling the call after it was admitted does not withdraw the
        update; it is still folded.

        Args:
            update: Parameter name -> C-contiguous float32 array with that parameter's element
                count. A subset of the names is allowed (partial upload). Read-only and unaligned
                views (np.frombuffer over a request body) are fine.
            data_size: The client's sample count, added to the data-size sum of every name it sent.
            weight: Multiplier applied to every array of this update.
            tag: Names the update (the device's fl_id); `checkpoint()` lists the tags of what the sums contain.

        Raises:
            TypeError: An array is not a C-contiguous native float32 numpy array.
            ValueError: Unknown name, wrong element count, empty update or negative data_size.
            RuntimeError: An earlier fold failed; the sums are unusable until reset().
        """
        checked = self._checked(update, data_size)
        await self._enqueue(_Pending(checked, data_size, weight, asyncio.get_running_loop().create_future(), tag))

    async def _enqueue(self, item: _Pending) -> None:
        """Admits `item` (waiting for a slot), starts the worker if idle, and returns once it is folded."""
        self._raise_if_failed()
        self._raise_if_lent()
        await self._slots.acquire()
        # No await between acquiring the slot and queueing: cancellation cannot leak a slot.
        if self._failure is not None or self._lent:
            self._slots.release()
            self._raise_if_failed()
            self._raise_if_lent()
        loop = asyncio.get_running_loop()
        self._queue.append(item)
        self._in_flight += 1
        if self._in_flight > self._stats.peak_pending:
            self._stats = FoldStats(self._stats.updates_folded, self._stats.fold_passes, self._in_flight)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain(), name="iteration-accumulator-fold")
        await asyncio.shield(item.done)

    async def add_decoded(self, names: Sequence[str], data_size: int,
                          decode: Callable[[Mapping[str, F32Array]], None], tag: str | None = None) -> None:
        """Like add(), for an update that adds itself into the sums: a compressed upload decoded in place.

        `decode(sums)` runs on the worker thread, in turn with the other folds, and must add the update into
        `sums[name]` for the names it covers, without allocating a dense copy per client if it can help it
        (compression.decode_into scatters straight into the sums). It must not raise: verify the update first,
        since a decode that fails half-way leaves the sums unusable until reset(), as a failed fold does.

        Args:
            names: The parameters the update covers; their data-size sums grow by `data_size`.
            data_size: The client's sample count.
            decode: Adds the update into the sums it is given (name -> C-contiguous float32 accumulator).
            tag: As for add().

        Raises:
            ValueError: No name, an unknown name, or a negative data_size.
            RuntimeError: An earlier fold failed.
        """
        if not names:
            raise ValueError("update names no parameter")
        unknown = [name for name in names if name not in self._sizes]
        if unknown:
            raise ValueError(f"unknown parameters {unknown!r}")
        if data_size < 0:
            raise ValueError(f"data_size must be >= 0, got {data_size}")
        await self._enqueue(_Pending({}, data_size, 1.0, asyncio.get_running_loop().create_future(), tag,
                                     decode, tuple(names)))

    def finalize(self) -> dict[str, F32Array | None]:
        """The weighted average per name: sum / data-size sum, in new arrays.

        Returns:
            Name -> float32 array, or None for a name whose data-size sum is 0 (nobody sent it).

        Raises:
            RuntimeError: Updates are still being folded, or an earlier fold failed.
        """
        self._require_idle("finalize")
        result: dict[str, F32Array | None] = {}
        for name, acc in self._sums.items():
            total = self._data_sizes[name]
            if total == 0:
                result[name] = None
                continue
            out = np.empty_like(acc)
            _core.agg.scale_into(acc, 1.0 / total, out)
            result[name] = out
        return result

    def reset(self) -> None:
        """Zeroes the sums and data sizes for the next iteration, reusing the buffers.

        Raises:
            RuntimeError: Updates are still being folded.
        """
        if self._in_flight:
            raise RuntimeError(f"reset: {self._in_flight} updates are still being folded")
        if self._lent:  # the lent arrays may still be on their way to a peer: leave them as they are
            self._sums = {name: np.zeros(size, dtype=np.float32) for name, size in self._sizes.items()}
            self._lent = False
        for acc in self._sums.values():
            acc.fill(0.0)
        self._data_sizes = dict.fromkeys(self._sizes, 0)
        self._tags.clear()
        self._failure = None

    async def reset_when_idle(self) -> None:
        """`reset()` once no fold, checkpoint or export is running (they may be on a worker thread).

        Raises:
            RuntimeError: Updates are still being folded.
        """
        async with self._fold_lock:
            self.reset()

    async def snapshot(self) -> tuple[dict[str, F32Array], dict[str, int]]:
        """A consistent copy of the partial sums and their data sizes, e.g. for a checkpoint.

        Waits for the fold in progress (if any) and holds the next one back while copying, so
        the sums and data sizes describe the same set of updates.

        Returns:
            (name -> copy of the float32 sum, name -> data-size sum).

        Raises:
            RuntimeError: An earlier fold failed.
        """
        sums, data_sizes, _ = await self.checkpoint()
        return sums, data_sizes

    async def checkpoint(self) -> tuple[dict[str, F32Array], dict[str, int], list[str]]:
        """Like `snapshot()`, plus the tags of exactly the updates the copied sums contain."""
        async with self._fold_lock:
            self._raise_if_failed()
            sums = await asyncio.to_thread(lambda: {name: acc.copy() for name, acc in self._sums.items()})
            return sums, dict(self._data_sizes), list(self._tags)

    async def export(self, write: Callable[[Mapping[str, F32Array], Mapping[str, int], Sequence[str]], T]) -> T:
        """`write(sums, data_sizes, tags)` on a worker thread while no fold runs, without copying the sums first.

        `write` must only read the arrays, and must not keep them past its return (the next fold changes them).
        """
        async with self._fold_lock:
            self._raise_if_failed()
            data_sizes, tags = dict(self._data_sizes), list(self._tags)
            return await asyncio.to_thread(write, self._sums, data_sizes, tags)

    async def lend(self) -> tuple[dict[str, F32Array], dict[str, int], list[str]]:
        """The live sums themselves (no copy), their data sizes and tags, frozen until reset().

        For the aggregator, which asks once every update of the iteration is folded: from here on add() raises, so
        the arrays stay exactly what the tags say for as long as anyone holds them, and reset() gives this
        accumulator new arrays instead of zeroing the lent ones. Lending again before reset() returns the same.

        Raises:
            RuntimeError: Updates are still being folded, or an earlier fold failed.
        """
        async with self._fold_lock:
            self._require_idle("lend")
            self._lent = True
            return dict(self._sums), dict(self._data_sizes), list(self._tags)

    @property
    def lent(self) -> bool:
        """Whether lend() froze the sums (until reset())."""
        return self._lent

    @property
    def tags(self) -> list[str]:
        """Tags of the updates folded so far (a copy)."""
        return list(self._tags)

    def _checked(self, update: Mapping[str, F32Array], data_size: int) -> dict[str, F32Array]:
        if not update:
            raise ValueError("update names no parameter")
        if data_size < 0:
            raise ValueError(f"data_size must be >= 0, got {data_size}")
        for name, array in update.items():
            if name not in self._sizes:
                raise ValueError(f"unknown parameter {name!r}")
            if not isinstance(array, np.ndarray) or array.dtype != np.float32:
                kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
                raise TypeError(f"parameter {name!r}: expected a native float32 numpy array, got {kind}")
            if not array.flags.c_contiguous:
                raise TypeError(f"parameter {name!r}: array is not C-contiguous")
            if array.size != self._sizes[name]:
                raise ValueError(f"parameter {name!r} has {array.size} elements, expected {self._sizes[name]}")
        return dict(update)

    async def _drain(self) -> None:
        """Folds queued updates, up to max_group per pass, until the queue is empty."""
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self._max_group, len(self._queue)))]
            try:
                async with self._fold_lock:
                    if self._floats(batch) <= INLINE_FOLD_FLOATS:
                        self._fold(batch)  # cheaper than the thread hop (~0.1 ms) it would wait for
                    else:
                        await asyncio.to_thread(self._fold, batch)
                    for item in batch:
                        for name in (*item.update, *item.decode_names):
                            self._data_sizes[name] += item.data_size
                        if item.tag is not None:
                            self._tags.append(item.tag)
            except asyncio.CancelledError:
                # Shutdown: nobody will fold what is left; wake every waiter.
                for item in [*batch, *self._queue]:
                    item.done.cancel()
                self._release(len(batch) + len(self._queue), passes=0, folded=0)
                self._queue.clear()
                raise
            except Exception as exc:  # handed to the callers whose updates were in this pass
                # A fold that failed half-way leaves the sums unusable until reset().
                self._failure = exc
                logger.error("fold of %d updates failed: %s", len(batch), exc)
                for item in batch:
                    item.done.set_exception(exc)
                self._release(len(batch), passes=1, folded=0)
            else:
                for item in batch:
                    item.done.set_result(None)
                self._release(len(batch), passes=1, folded=len(batch))

    def _floats(self, batch: list[_Pending]) -> int:
        """Coordinates a fold of `batch` touches (a decoded update touches its names' whole sums)."""
        return sum(sum(a.size for a in item.update.values()) + sum(self._sizes[n] for n in item.decode_names)
                   for item in batch)

    def _fold(self, batch: list[_Pending]) -> None:
        """Worker thread: adds every update of `batch` into the sums, one pass per name."""
        by_name: dict[str, tuple[list[F32Array], list[float]]] = {}
        for item in batch:
            for name, array in item.update.items():
                arrays, weights = by_name.setdefault(name, ([], []))
                arrays.append(array)
                weights.append(item.weight)
        for name, (arrays, weights) in by_name.items():
            if len(arrays) == 1:
                _core.agg.accumulate(self._sums[name], arrays[0], weights[0])
            else:
                _core.agg.accumulate_group(self._sums[name], arrays, weights)
        for item in batch:
            if item.decode is not None:
                item.decode(self._sums)

    def _release(self, count: int, *, passes: int, folded: int) -> None:
        self._in_flight -= count
        for _ in range(count):
            self._slots.release()
        s = self._stats
        self._stats = FoldStats(s.updates_folded + folded, s.fold_passes + passes, s.peak_pending)

    def _require_idle(self, what: str) -> None:
        if self._in_flight:
            raise RuntimeError(f"{what}: {self._in_flight} updates are still being folded")
        self._raise_if_failed()

    def _raise_if_lent(self) -> None:
        if self._lent:
            raise RuntimeError("the sums were lent to the aggregator; no update is folded until reset()")

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise RuntimeError("an earlier fold failed; the sums are unusable until reset()") from self._failure
