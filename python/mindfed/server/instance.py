"""The instance's life cycle as one server follows it: a `/newInstance` (spec §6.1), the scheduler's disable, enable
and finish (spec §4.7), and Redis losing the instance (a restart or a flush, spec §6.3).

The tick (server/iteration.py) notices each of these in Redis and calls in here, under its lock.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from mindfed.cache.store import DISABLED, RUNNING, InstanceStatus
from mindfed.config import FLConfig
from mindfed.config.loader import hyper_params
from mindfed.errors import CacheError
from mindfed.server.hyper_params import adopt
from mindfed.server.iteration_end import drain_requests, fail, publish_latest_model
from mindfed.server.phase import IterationPhase
from mindfed.server.state import ServerState
from mindfed.server.stats_buffer import StatsBuffer
from mindfed.server.summary import SummaryWriter

logger = logging.getLogger(__name__)

REASON_DISABLED = "Disable instance"
REASON_NEW_INSTANCE = "Start new instance"
REASON_CACHE_EMPTY = "The instance status info stored in distributed cache is empty, current iteration: {}"


class InstanceLifecycle:
    """Moves this server's state along with the instance's.

    Args:
        state: the server's mutable state.
        summary: writes the summary line of an iteration a new instance cuts short.
        stats: request counters waiting to be written to Redis.
        base_config: the configuration a new instance's hyper-parameters apply on top of.
    """

    def __init__(self, state: ServerState, summary: SummaryWriter, stats: StatsBuffer, base_config: FLConfig) -> None:
        self._state = state
        self._summary = summary
        self._stats = stats
        self._base_config = base_config

    async def follow(self, status: InstanceStatus) -> bool:
        """Mirror the instance's running state; True when a disable has just failed the iteration under way."""
        st = self._state
        if status.running_state == DISABLED and st.running_state == RUNNING:
            st.running_state = DISABLED  # refuse rounds at once; the iteration under way fails (spec §4.7)
            await fail(st, st.iteration, REASON_DISABLED)
            return True
        st.running_state = status.running_state
        return False

    async def republish(self, forget_success: Callable[[], None]) -> None:
        """Redis lost our instance (restart or flush): write it back from memory and fail the current iteration.

        Args:
            forget_success: drops a success this server won but has not published yet: its iteration is gone.
        """
        st = self._state
        logger.warning("it %d: instance status missing in the distributed cache; republishing", st.iteration)
        st.phase.enter(IterationPhase.REPUBLISHED, st.iteration)  # safemode until the switch that follows the failure
        await st.store.claim_instance(st.instance, st.ttl)
        await st.store.init_status(st.instance, st.iteration, st.running_state, st.ttl)
        await st.store.publish_hyper_params(st.instance, hyper_params(st.config), st.ttl)
        await publish_latest_model(st)
        if st.pw_prime:  # the flushed Redis lost the prime too: every server publishes its own, all adopt the first
            st.pw_prime = await st.store.publish_pw_prime(st.pw_prime)
        forget_success()
        await fail(st, st.iteration, REASON_CACHE_EMPTY.format(st.iteration))

    async def switch_to(self, instance: str, forget_success: Callable[[], None]) -> None:
        """A `/newInstance` (spec §6.1): iterations restart at 1 from the current model, with the new parameters.

        Safemode ends even if a step fails, or the server would be stuck.

        Args:
            instance: the new instance's name.
            forget_success: drops a success this server won but has not published yet: its instance is gone.
        """
        st = self._state
        old_instance, old_iteration = st.instance, st.iteration
        st.phase.enter(IterationPhase.NEW_INSTANCE, st.iteration)
        try:
            await drain_requests(st)
            with contextlib.suppress(CacheError):
                await self._stats.flush(st.iteration_cache)
                await st.cache().mark_flushed(st.node_id)  # the writer need not wait for our counters
                await self._summary.write(old_iteration, False, REASON_NEW_INSTANCE, st.running_state)
            params = await st.store.read_hyper_params(instance)
            base = self._base_config
            st.config = adopt(base, params, hyper_params(base)) if params else base
            status = await st.store.init_status(instance, 1, RUNNING, st.ttl)
            st.models.reset(status.iteration - 1, st.models.latest)
            await publish_latest_model(st)  # servers joining the new instance start from it
            with contextlib.suppress(CacheError):
                await st.store.unregister_server(old_instance, st.node_id)
                await st.store.expire_instance(old_instance)
            st.instance, st.iteration, st.running_state = instance, status.iteration, status.running_state
            st.iteration_start_ms = None
            st.completing.clear()
            forget_success()
            st.accumulator.reset()
            await st.store.register_server(instance, st.node_id, st.tcp_address)
            logger.info("new instance %s: iteration %d, threshold %d", instance, st.iteration,
                        st.config.round.start_fl_job_threshold)
        finally:
            st.phase.enter(IterationPhase.RUNNING, st.iteration)
            st.iteration_watch.notify()
