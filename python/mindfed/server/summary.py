"""Writes what a finished iteration leaves behind: a metrics.json line (also kept in Redis's bounded history, for the
scheduler's dashboard), failure events, the recovery checkpoint.

One server per iteration holds the summary lock and writes; since every counter it reads is cluster-wide in Redis, the
line covers all servers (spec §9).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from mindfed.cache import keys as K
from mindfed.cache.hybrid import HybridIteration
from mindfed.cache.iteration import SUMMARY_FINISHED, IterationCache
from mindfed.cache.iteration_history import IterationHistory
from mindfed.cache.store import DISABLED, FINISHED
from mindfed.config import FLConfig
from mindfed.config.enums import EvalType, ServerMode
from mindfed.errors import CacheError
from mindfed.model.recovery import RecoveryCheckpoints
from mindfed.model.weights import ModelWeights
from mindfed.privacy.accountant import metrics_fields
from mindfed.server import stats as S
from mindfed.server.state import ServerState
from mindfed.summary.failure_events import FailureEventLog
from mindfed.summary.metrics_file import MetricsFile, encode_line
from mindfed.summary.record import InstanceStatus, IterationResult, IterationSummary, RoundVisits
from mindfed.summary.unsupervised_eval import score

logger = logging.getLogger(__name__)

_STATUS = {FINISHED: InstanceStatus.FINISH, DISABLED: InstanceStatus.DISABLE}
# The writer's hold on the summary lock, renewed every RENEW_S while it writes: a lock gone before "Finish" is a dead
# writer's (MindSpore: a 10 s lock, not renewed, and nobody takes over).
LEASE_S, RENEW_S = 5, 1.0
WATCH_POLL_S = 0.5
WATCH_LIMIT_S = 60.0  # how long the other servers watch a writer that keeps renewing its lease


@dataclass(frozen=True, slots=True)
class IterationEnd:
    """What `ServerOptions.on_iteration_end` receives (MindSpore's CallbackContext fields)."""

    fl_name: str
    instance_name: str
    iteration_num: int
    iteration_valid: bool
    iteration_result: str
    feature_map: ModelWeights | None
    checkpoint_file: str | None


@dataclass(frozen=True, slots=True)
class _Ended:
    """An iteration as it ended, and the instance and configuration it ran under."""

    instance: str
    iteration: int
    config: FLConfig
    success: bool
    reason: str
    running_state: int
    model: ModelWeights | None


IterationEndHook = Callable[[IterationEnd], Awaitable[None] | None]
# Every server's view of each iteration end (iteration, success, reason), e.g. ServerMetrics.iteration_ended.
IterationResultHook = Callable[[int, bool, str], None]


class SummaryWriter:
    """Summarises finished iterations of one server.

    Args:
        state: the server's state (config, store, models).
        output_dir: where relative `metrics_file` / `failure_event_file` paths are resolved.
        checkpoints: recovery checkpoint writer, or None when no checkpoint_dir is configured.
    """

    def __init__(self, state: ServerState, output_dir: Path, checkpoints: RecoveryCheckpoints | None,
                 on_iteration_end: IterationEndHook | None = None,
                 on_result: IterationResultHook | None = None) -> None:
        cfg = state.config.summary
        self._state = state
        self.metrics = MetricsFile(output_dir / cfg.metrics_file)
        self._events = FailureEventLog(output_dir / cfg.failure_event_file, cfg.continuous_failure_times,
                                       state.tcp_address)
        self._checkpoints = checkpoints
        self._on_iteration_end = on_iteration_end
        self._on_result = on_result
        self._watchers: set[asyncio.Task[None]] = set()

    async def write(self, iteration: int, success: bool, reason: str, running_state: int) -> None:
        """Summarise `iteration` of the current instance; call it before the state moves on (iteration, instance).

        The line, its counters and its lock are those of the instance the iteration ran in, fixed here: a
        `/newInstance` renames `st.instance` (and may change `st.config`) while the line is still being written.
        """
        st = self._state
        if self._on_result is not None:
            self._on_result(iteration, success, reason)
        ended = _Ended(st.instance, iteration, st.config, success, reason, running_state, st.models.get(iteration))
        cache = st.iteration_cache(ended.instance, iteration)
        holder = await cache.take_summary_lock(st.node_id, LEASE_S)
        self._events.record(success, may_write=holder)
        if holder:
            await self._write_holding(ended, cache)
            return
        task = asyncio.get_running_loop().create_task(self._take_over_if_holder_dies(ended, cache),
                                                      name="summary-watch")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    def close(self) -> None:
        """Stop watching other servers' summary locks (the server is leaving)."""
        for task in list(self._watchers):
            task.cancel()

    async def _take_over_if_holder_dies(self, ended: _Ended, cache: IterationCache) -> None:
        """If the server holding the summary lock dies before writing, write the line here (MindSpore loses it).

        A writer renews its lease while it writes, however long that takes, so only a lock that is gone before it
        says "Finish" means a dead writer. Not its heartbeat: the tick that refreshes it waits for the switch, the
        summary included, and after a `/newInstance` the writer is a member of neither instance while it writes.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WATCH_LIMIT_S
        try:
            while loop.time() < deadline:
                await asyncio.sleep(WATCH_POLL_S)
                holder = await cache.summary_lock_holder()
                if holder == SUMMARY_FINISHED:
                    return
                if holder is None and await cache.take_summary_lock(self._state.node_id, LEASE_S):
                    logger.warning("it %d of %s: the summary writer's lease ran out before it finished; writing the "
                                   "line here", ended.iteration, ended.instance)
                    await self._write_holding(ended, cache)
                    return
        except CacheError as exc:
            logger.info("it %d: summary watch ended: %s", ended.iteration, exc)

    async def _write_holding(self, ended: _Ended, cache: IterationCache) -> None:
        """Write the line under the summary lock, renewing its lease meanwhile, then mark it written."""
        renewal = asyncio.get_running_loop().create_task(self._renew_lease(cache), name="summary-lease")
        try:
            await self._write_line(ended, cache)
        finally:
            renewal.cancel()
        if not await cache.finish_summary_lock(self._state.node_id, self._state.ttl.iteration_s):
            logger.warning("it %d of %s: another server took the summary lock over while this one wrote the line",
                           ended.iteration, ended.instance)

    async def _renew_lease(self, cache: IterationCache) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                if not await cache.renew_summary_lock(self._state.node_id, LEASE_S):
                    logger.warning("it %d: summary lock lost while writing (its lease ran out)", cache.iteration)
                    return
            except CacheError as exc:  # the lease may still hold: try again
                logger.info("it %d: summary lease not renewed: %s", cache.iteration, exc)

    async def _write_line(self, ended: _Ended, cache: IterationCache) -> None:
        cfg, iteration = ended.config, ended.iteration
        await self._wait_for_counters(ended.instance, cache)
        stats, timers = await asyncio.gather(cache.stats(), cache.timers())
        privacy = metrics_fields(cfg, iteration)  # DP_ENCRYPT: ε spent, and the budget's stop
        if "dpBudgetExhausted" in privacy:
            logger.warning("it %d: %s; the job finishes here", iteration, privacy["dpBudgetExhausted"])
        loss_sum, data_size_sum, accuracy_sum, eval_data_size_sum = await self._loss_and_accuracy(ended, stats)
        summary = IterationSummary(
            fl_name=cfg.fl_name,
            instance_name=ended.instance,
            fl_iteration_num=cfg.fl_iteration_num,
            current_iteration=iteration,
            instance_status=_STATUS.get(ended.running_state, InstanceStatus.RUNNING),
            iteration_result=IterationResult.SUCCESS if ended.success else IterationResult.FAIL,
            start_time=datetime.fromtimestamp(timers["startFLJob"] / 1000) if "startFLJob" in timers else None,
            end_time=datetime.now(),
            **{_field(r): _visits(stats, r) for r in S.SUMMARY_ROUNDS},
            participation_level1=int(stats.get(S.LEVELS[0], 0)),
            participation_level2=int(stats.get(S.LEVELS[1], 0)),
            participation_level3=int(stats.get(S.LEVELS[2], 0)),
            loss_sum=loss_sum,
            data_size_sum=data_size_sum,
            accuracy_sum=accuracy_sum,
            eval_data_size_sum=eval_data_size_sum,
            unsupervised_eval=await self._unsupervised_score(ended),
            extra={"bytesReceived": int(stats.get(S.BYTES_RECEIVED, 0)),
                   "bytesSent": int(stats.get(S.BYTES_SENT, 0)),
                   "iterationReason": ended.reason, **privacy},
        )
        await asyncio.to_thread(self.metrics.append, summary)
        await self._publish(summary)
        path = None
        if self._checkpoints is not None and ended.model is not None:
            path = await asyncio.to_thread(self._checkpoints.save, iteration, ended.model)
            logger.info("it %d: recovery checkpoint %s", iteration, path)
        if self._on_iteration_end is not None:  # called on the one server that wrote the summary, as MindSpore
            await self._call_hook(IterationEnd(cfg.fl_name, ended.instance, iteration, ended.success, ended.reason,
                                               ended.model, str(path) if path else None))

    async def _publish(self, summary: IterationSummary) -> None:
        """The same line into Redis's bounded history, for the scheduler's dashboard. Best effort: metrics_file has
        the line already, and a Redis outage must not cost the checkpoint or the hook that follow."""
        try:
            line = encode_line(summary).rstrip("\n")
            await IterationHistory(self._state.store).append(line, self._state.ttl.config_s)
        except CacheError as exc:
            logger.warning("it %d: metrics line not added to the dashboard's history: %s", summary.current_iteration,
                           exc)

    async def _loss_and_accuracy(self, ended: _Ended, stats: dict[str, float]) -> tuple[float, float, float, float]:
        """The sums behind metricsLoss and metricsAuc: the devices' uploads, or in HYBRID_TRAINING the worker's
        pushMetrics (spec §9) of the instance the iteration ran in, written as the shortest decimal of the float32
        it was sent as (6.9, not 6.900000095367432)."""
        if ended.config.server_mode == ServerMode.HYBRID_TRAINING:
            st = self._state
            pushed = await HybridIteration(st.store, ended.instance, ended.iteration, st.ttl).metrics()
            loss, accuracy = pushed if pushed is not None else (0.0, 0.0)
            return float(str(np.float32(loss))), 1.0, float(str(np.float32(accuracy))), 1.0
        return (stats.get(S.LOSS_SUM, 0.0), stats.get(S.DATA_SIZE_SUM, 0.0), stats.get(S.ACCURACY_SUM, 0.0),
                stats.get(S.EVAL_SIZE_SUM, 0.0))

    async def _call_hook(self, end: IterationEnd) -> None:
        try:
            result = self._on_iteration_end(end)  # type: ignore[misc]
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("it %d: on_iteration_end callback failed", end.iteration_num)

    async def _wait_for_counters(self, instance: str, cache: IterationCache, timeout_s: float = 0.5) -> None:
        """Every live server flushes its request counters when it switches (within a tick); wait that long for the
        ones whose heartbeat in `instance` is fresh (spec §9 waits for all servers' summaries in the same way). Short
        on purpose: the line must be written before the writer itself can be stopped."""
        st = self._state
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if await st.store.fresh_servers(instance, st.heartbeat_ttl_s) <= await cache.flushed():
                return
            await asyncio.sleep(0.02)
        logger.info("summary written before every server flushed its counters")

    async def _unsupervised_score(self, ended: _Ended) -> float:
        unsup = ended.config.unsupervised
        if unsup.eval_type == EvalType.NOT_EVAL:
            return 0.0
        vectors = await self._state.store.unsupervised_vectors(ended.instance, unsup.cluster_client_num)
        if len(vectors) < unsup.cluster_client_num:
            return 0.0
        return score(vectors, str(unsup.eval_type))


def _field(round_name: str) -> str:
    return {"startFLJob": "start_fl_job", "updateModel": "update_model", "getModel": "get_model",
            "getResult": "get_result"}[round_name]


def _visits(stats: dict[str, float], round_name: str) -> RoundVisits:
    total = int(stats.get(K.visits_total(round_name), 0))
    return RoundVisits(total, min(total, int(stats.get(K.visits_accept(round_name), 0))))
