"""The tick of one server (spec §4): timers, completion, the switch to the next iteration.

Every decision that must be taken once per cluster is a compare-and-set in Redis (`finish_iteration.lua`); every
server then notices the new iteration on its next tick and runs the same local switch procedure (spec §4.6).
Timers are cluster-wide: their start times live in Redis, so any server can end a round that another one started.
The tick also notices what the instance does (server/instance.py) and servers that died (server/takeover.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from mindfed.cache.durability import DurableUpdates, read_model
from mindfed.cache.store import FINISHED, RUNNING, InstanceStatus
from mindfed.errors import CacheError
from mindfed.model.weights import ModelWeights
from mindfed.privacy.accountant import last_iteration
from mindfed.secagg.thresholds import PKI_ROUNDS, PW_ROUNDS, RECONSTRUCT_SECRETS, pw_thresholds
from mindfed.server.combine import combine
from mindfed.server.hybrid import hold_for_worker, hybrid_iteration, is_hybrid
from mindfed.server.instance import InstanceLifecycle
from mindfed.server.iteration_end import drain_requests, publish_latest_model
from mindfed.server.iteration_end import fail as fail_iteration
from mindfed.server.partials import decode_model, encode_model
from mindfed.server.phase import IterationPhase
from mindfed.server.stable_pw import is_stable_pw, missing_workers
from mindfed.server.state import ServerState, now_ms
from mindfed.server.stats_buffer import StatsBuffer
from mindfed.server.summary import SummaryWriter
from mindfed.server.takeover import WATCH_PERIOD_S, watch_participants
from mindfed.server.unmask import UnmaskError

logger = logging.getLogger(__name__)

REASON_AGGREGATED = "Weight aggregation finished! This iteration is valid. Proceed to next iteration."
REASON_UNMASKED = "Weight unmask finished! This iteration is valid. Proceed to next iteration."
REASON_GLOBAL_TIMEOUT = "Global timer timeout! This iteration is invalid. Proceed to next iteration."
HEARTBEAT_PERIOD_S = 1.0


def cipher_round_expired(timers: dict[str, int], window_ms: int, now: int) -> str | None:
    """The first PW_ENCRYPT round whose timer ran out: started (first count) and not closed (threshold) within
    cipher_time_window (spec §4.3; the rounds close in the scripts of cache/scripts/pw_*.lua)."""
    for name in (*PW_ROUNDS, *PKI_ROUNDS):  # pushListSign/getListSign have timers only under pki_verify
        if name in timers and f"{name}:closed" not in timers and now - timers[name] > window_ms:
            return name
    return None


def round_timeout_reason(round_name: str) -> str:
    return f"Round {round_name} timeout! This iteration is invalid. Proceed to next iteration."


class IterationDriver:
    """Runs the per-server tick loop and moves the local state from iteration to iteration.

    Args:
        state: the server's mutable state.
        summary: writes metrics, failure events and the recovery checkpoint of a finished iteration.
        stats: request counters waiting to be written to Redis.
        instance: follows the instance's life cycle when the tick notices it change.
        tick_s: how often Redis is polled for the iteration status and timers (MindSpore: 1 s).
    """

    def __init__(self, state: ServerState, summary: SummaryWriter, stats: StatsBuffer, instance: InstanceLifecycle,
                 tick_s: float = 0.1) -> None:
        self._state = state
        self._instance = instance
        self._summary = summary
        self._stats = stats
        self._tick_s = tick_s
        self._last_heartbeat = 0.0
        self._last_watch = 0.0
        self._pending_success: int | None = None
        self._won: int | None = None  # the last iteration whose success compare-and-set this server won
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Tick until `stop()`. A failing tick is logged and retried; it never ends the loop.

        Stopping is an event rather than task cancellation alone: redis-py can absorb a cancellation that lands
        inside its own socket timeout, and a loop relying on it would then never end.
        """
        while not self._stop.is_set():
            try:
                await self.tick()
            except CacheError as exc:
                self._cache_lost(exc)
            except Exception:
                logger.exception("it %d: tick failed", self._state.iteration)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._tick_s)

    def stop(self) -> None:
        self._stop.set()
        self._summary.close()

    def _cache_lost(self, exc: CacheError) -> None:
        if self._state.cache_ok:
            logger.warning("it %d: distributed cache unavailable, answering safemode: %s", self._state.iteration, exc)
        self._state.cache_ok = False

    async def tick(self) -> None:
        async with self._lock:
            await self._tick_locked()

    async def _tick_locked(self) -> None:
        st = self._state
        status = await st.store.read_status(st.instance)
        if not st.cache_ok:
            logger.info("it %d: distributed cache is back", st.iteration)
            st.cache_ok = True
        if status is None:
            await self._instance.republish(self._forget_success)
            status = await st.store.read_status(st.instance)
            if status is None:
                return
        await self._stats.flush(st.iteration_cache)
        if self._pending_success is not None:
            await self._publish_success(self._pending_success)
            status = await st.store.read_status(st.instance) or status
        instance = await st.store.current_instance()
        if instance is not None and instance != st.instance:
            await self._instance.switch_to(instance, self._forget_success)
            return
        if status.iteration != st.iteration:
            await self._switch(status)
            return
        if await self._instance.follow(status):
            return
        await self._heartbeat()
        if st.running_state == RUNNING and not st.safemode and st.iteration not in st.completing:
            await self._check_timers()  # not while we combine: every update is folded, no window can run out
            if time.monotonic() - self._last_watch >= WATCH_PERIOD_S:
                self._last_watch = time.monotonic()
                await watch_participants(st)

    async def _heartbeat(self) -> None:
        st = self._state
        if time.monotonic() - self._last_heartbeat < HEARTBEAT_PERIOD_S:
            return
        await st.store.register_server(st.instance, st.node_id, st.tcp_address, st.heartbeat_ttl_s)
        await st.store.refresh(st.instance, st.iteration, st.ttl)
        self._last_heartbeat = time.monotonic()

    async def _check_timers(self) -> None:
        st, rnd = self._state, self._state.config.round
        cache = st.cache()
        timers, counts = await asyncio.gather(cache.timers(), cache.counts())
        started = timers.get("startFLJob")
        if started is None:
            return
        st.iteration_start_ms = started
        elapsed = now_ms() - started
        reason = None
        if elapsed > rnd.global_iteration_time_window:
            reason = REASON_GLOBAL_TIMEOUT
        elif "startFLJob:closed" not in timers and elapsed > rnd.start_fl_job_time_window:
            reason = round_timeout_reason("startFLJob")
        elif ("updateModel" in timers and counts.get("updateModel", 0) < rnd.update_model_threshold
              and now_ms() - timers["updateModel"] > rnd.update_model_time_window):
            reason = round_timeout_reason("updateModel")
        elif st.pw_prime or is_stable_pw(st.config):
            expired = cipher_round_expired(timers, st.config.encrypt.pw_encrypt.cipher_time_window, now_ms())
            if expired is not None:
                reason = round_timeout_reason(expired)
        if reason is None:
            return
        if is_stable_pw(st.config):  # name the workers whose absence keeps the masks from cancelling
            reason = f"{reason} {await missing_workers(st, st.iteration)}".rstrip()
        await self.fail(st.iteration, reason)

    async def fail(self, iteration: int, reason: str) -> None:
        """End `iteration` as failed, unless it has already ended."""
        await fail_iteration(self._state, iteration, reason)

    async def complete(self, iteration: int) -> None:
        """Every update of `iteration` is folded somewhere: if this server wins the aggregator role, combine all
        servers' partial sums, publish the new global model and move the cluster on."""
        st = self._state
        if iteration != st.iteration or iteration in st.completing or st.running_state != RUNNING:
            return
        if st.pw_prime and not await self._secrets_revealed(iteration):
            return  # PW_ENCRYPT: the masks can be removed once t + 1 devices revealed their shares
        if is_hybrid(st) and await hybrid_iteration(st, iteration).aggregated():
            return  # HYBRID_TRAINING: combined already, the iteration waits for a worker (server/hybrid.py)
        durable = DurableUpdates(st.store, st.instance, iteration, st.ttl)
        if not await durable.claim_aggregator(st.node_id):
            return
        if iteration != st.iteration or iteration in st.completing:
            return  # ended (or claimed by our other task) while we claimed; the lease expires by itself
        # No safemode here: as in MindSpore, the counts already turn devices away ("enough", "reached the
        # threshold") until the switch, which is where safemode belongs (spec §4.6).
        st.completing.add(iteration)
        try:
            try:
                st.models.make_room()
                model, count = await combine(st, iteration)
            except UnmaskError as exc:
                logger.error("it %d: %s", iteration, exc)
                st.models.put(iteration, st.models.latest)
                await self.fail(iteration, f"Weight unmask failed, current iteration: {iteration}. {exc}")
                return
            if not await self._still_running(iteration):
                logger.warning("it %d: ended while its updates were combined; the aggregate is dropped", iteration)
                return
            if model is None:
                logger.error("it %d: aggregate is not finite; the iteration fails", iteration)
                st.models.put(iteration, st.models.latest)
                await self.fail(iteration, f"Weight aggregation failed, current iteration: {iteration}")
            elif is_hybrid(st):
                await hold_for_worker(st, iteration, model)
                return
            else:
                await _publish(st, durable, iteration, model)
                if not await self._still_running(iteration):
                    # a failure won meanwhile: take the aggregate back out, as every other server carries forward
                    logger.warning("it %d: ended while its model was published; republishing the previous one",
                                   iteration)
                    await durable.publish_model(iteration, await asyncio.to_thread(encode_model, st.models.latest))
                    return
                st.models.put(iteration, model)
                self._pending_success = iteration
        except Exception:
            logger.exception("it %d: combining the partial sums failed; another server may retry", iteration)
            st.completing.discard(iteration)
            with contextlib.suppress(CacheError):
                await durable.release_aggregator(st.node_id)
            return
        await self.tick()

    async def _secrets_revealed(self, iteration: int) -> bool:
        st = self._state
        counts = await st.store_iteration(iteration).counts()
        return counts.get(RECONSTRUCT_SECRETS, 0) >= pw_thresholds(st.config).reconstruct_secrets

    async def _still_running(self, iteration: int) -> bool:
        """Whether `iteration` is still the cluster's, here and in Redis. While this server holds the aggregator
        lease nobody else can end it with success, so an iteration that ended meanwhile failed (a timer elsewhere,
        disable, a stop, a new instance)."""
        st = self._state
        if iteration != st.iteration:
            return False
        status = await st.store.read_status(st.instance)  # a switch under way has moved Redis, not us yet
        return status is not None and status.iteration == iteration

    async def _publish_success(self, iteration: int) -> None:
        st = self._state
        reason = REASON_UNMASKED if st.pw_prime else REASON_AGGREGATED
        moved = await st.store.finish_iteration(st.instance, iteration, True, reason, last_iteration(st.config))
        if moved:
            self._won = iteration  # ours, even if the cluster has moved further by the time we switch
        self._pending_success = None
        logger.info("it %d: aggregated (%s)", iteration, "published" if moved else "already moved")

    def _forget_success(self) -> None:
        """The iteration (or instance) of a success not yet published is gone: it must not be published."""
        self._pending_success = None

    async def _switch(self, status: InstanceStatus) -> None:
        """The local switch procedure of spec §4.6. Safemode ends even if a step fails, or the server would be stuck."""
        st = self._state
        old = st.iteration
        success = status.last_success and status.iteration == old + 1
        st.phase.enter(IterationPhase.SWITCHING, old, completed=old if success else None)
        try:
            await drain_requests(st)
            if st.models.get(old) is None and success:
                await self._adopt_published_model(old)
            if not success and self._won != old:
                await self._discard_own_aggregate(old)
            if st.models.get(old) is None:
                st.models.put(old, st.models.latest)  # a failed iteration carries the model forward (spec §4.6)
            with contextlib.suppress(CacheError):
                await self._stats.flush(st.iteration_cache)
                await st.store_iteration(old).mark_flushed(st.node_id)
                await self._summary.write(old, success, status.last_result, status.running_state)
                participants = await st.cache().servers_with_updates()
                await st.cache().release()
                await DurableUpdates(st.store, st.instance, old, st.ttl).release(list(participants))
            for skipped in range(old + 1, status.iteration):
                st.models.put(skipped, st.models.latest)
            st.iteration = status.iteration
            st.running_state = status.running_state
            st.iteration_start_ms = None
            st.completing.discard(old)
            st.replicas.keep_only(st.instance, st.iteration)  # copies of ended iterations are never read
            await st.accumulator.reset_when_idle()  # a combine may still be copying the sums
            logger.info("it %d -> %d (%s)%s", old, st.iteration, "success" if success else "fail",
                        ", training finished" if st.running_state == FINISHED else "")
        finally:
            st.phase.enter(IterationPhase.RUNNING, st.iteration)
            st.iteration_watch.notify()  # held getModel/getResult answers (server/iteration_watch.py)

    async def _discard_own_aggregate(self, iteration: int) -> None:
        """A failure (a stop, a timeout) won the compare-and-set against this server's finished combine: drop the
        aggregate it stored and published, or this server and later joiners would serve a model the others do not."""
        st = self._state
        previous = st.models.get(iteration - 1)
        if st.models.get(iteration) is None or previous is None:
            return
        st.models.put(iteration, previous)
        if iteration in st.completing:
            with contextlib.suppress(CacheError):
                await publish_latest_model(st)

    async def _adopt_published_model(self, iteration: int) -> None:
        """Take the model another server aggregated for `iteration` (published in Redis)."""
        st = self._state
        st.models.make_room()  # the published blob and its decoding are two models' worth on top
        published = await read_model(st.store, st.instance)
        if published is None or published[0] != iteration:
            logger.error("it %d: succeeded elsewhere but its model is not in the cache; keeping the previous one",
                         iteration)
            return
        st.models.put(iteration, await asyncio.to_thread(decode_model, published[1]))


async def _publish(st: ServerState, durable: DurableUpdates, iteration: int, model: ModelWeights) -> None:
    """Publishes `model` as `iteration`'s, encoded into the checkpoints' buffer (`st.scratch`) when no checkpoint is
    running: at the iteration's end they have nothing left to write, and a fresh 40 MB encoding would be one more
    model's memory at the server's peak, and its page faults more CPU than the copy. A running checkpoint is not
    waited for (under update_log replica it may wait up to its copy's timeout, and the aggregator's lease runs)."""
    if st.checkpoint_lock.locked():
        await durable.publish_model(iteration, await asyncio.to_thread(encode_model, model))
        return
    async with st.checkpoint_lock:  # free: taken without yielding
        blob = await asyncio.to_thread(encode_model, model, st.scratch.buffer)
        st.scratch.fit(blob)
        with st.scratch.writing():
            await durable.publish_model(iteration, blob)
