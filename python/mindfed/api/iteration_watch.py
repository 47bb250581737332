"""`on_iteration_end` without a server hook: watch a running ServerNode and call back on the summary writer.

Limitation (until the server offers a hook, see docs in FLServerJob): this polls `node.state` every `period_s`.
When the local iteration moves from n to m, the ended iteration n is reported if this node holds n's summary lock
in Redis (the server that wrote the metrics line and the recovery checkpoint, spec §9, §13). The lock key lives
30 s, so a poll period far below that never misses it; an iteration whose summary this server wrote while the
watcher was not running (before `after_started`) is not reported. Instance switches (`/newInstance`) reset the
watch without a report, as MindSpore reports none either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mindfed.api.callback import CallbackContext
from mindfed.api.feature_map import FeatureMap
from mindfed.errors import CacheError
from mindfed.model.recovery import RecoveryCheckpoints
from mindfed.server.node import ServerNode
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)


class IterationWatch:
    """Turns the iteration switches of one ServerNode into CallbackContexts.

    Args:
        node: a started ServerNode (its `state` is set).
        checkpoint_dir: the node's checkpoint directory, or None.
        on_end: awaited with each context, in iteration order.
        period_s: poll period.
    """

    def __init__(self, node: ServerNode, checkpoint_dir: str | None,
                 on_end: Callable[[CallbackContext], Awaitable[None]], period_s: float = 0.1) -> None:
        self._node, self._on_end, self._period_s = node, on_end, period_s
        self._checkpoint_dir = checkpoint_dir

    async def run(self) -> None:
        """Polls until cancelled."""
        state = self._node.state
        assert state is not None, "start the node first"
        instance, iteration = state.instance, state.iteration
        while True:
            await asyncio.sleep(self._period_s)
            if state.instance != instance:
                instance, iteration = state.instance, state.iteration
                continue
            while iteration < state.iteration:
                try:
                    context = await self._context(state, iteration)
                except CacheError as exc:
                    logger.warning("it %d: cannot tell who wrote the summary (%s); no on_iteration_end", iteration,
                                   exc)
                    context = None
                if context is not None:
                    await self._on_end(context)
                iteration += 1

    async def _context(self, state: ServerState, iteration: int) -> CallbackContext | None:
        store = state.store
        lock_key = store.job.instance(state.instance).iteration(iteration).summary_lock
        holder = await store.run("read summary lock", store.redis.get(lock_key))
        if holder != state.node_id:
            return None
        status = await store.read_status(state.instance)
        if status is not None and status.iteration == iteration + 1:
            valid, reason = status.last_success, status.last_result
        else:  # the cluster moved on again already; a model object of its own means the iteration aggregated
            valid, reason = state.models.get(iteration) is not state.models.get(iteration - 1), ""
        model = state.models.get(iteration)
        return CallbackContext(
            feature_map=FeatureMap.from_weights(model) if model is not None else FeatureMap(),
            checkpoint_file=self._checkpoint_file(state, iteration), fl_name=state.config.fl_name,
            instance_name=state.instance, iteration_num=iteration, iteration_valid=valid, iteration_result=reason)

    def _checkpoint_file(self, state: ServerState, iteration: int) -> str:
        if not self._checkpoint_dir:
            return ""
        files = RecoveryCheckpoints(self._checkpoint_dir, state.config.fl_name).list()
        return next((str(path) for it, path in files if it == iteration), "")
