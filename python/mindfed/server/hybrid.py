"""HYBRID_TRAINING on the server (spec §11.1): the devices' aggregate does not end the iteration, a worker does.

The aggregator stores the aggregate in Redis instead of publishing it; any server then serves it to a worker
(pullWeight), takes the worker's retrained weights (pushWeight) and ends the iteration on pushMetrics, publishing the
pushed weights as the iteration's model exactly where a FEDERATED_LEARNING aggregate goes, so every server adopts it
at the switch as it adopts an aggregate today. While the worker trains, the server's timers run again: the
`global_iteration_time_window` bounds the wait, so an iteration whose worker never comes back fails with MindSpore's
"Global timer timeout!" text instead of wedging the cluster.
"""

from __future__ import annotations

import asyncio
import logging

from mindfed.cache.durability import DurableUpdates
from mindfed.cache.hybrid import HybridIteration
from mindfed.config.enums import ServerMode
from mindfed.model.weights import ModelWeights
from mindfed.privacy.accountant import last_iteration
from mindfed.server.iteration_end import publish_latest_model
from mindfed.server.partials import encode_model
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)

REASON_PUSH_METRICS = "Push metrics finished! This iteration is valid. Proceed to next iteration."


def is_hybrid(state: ServerState) -> bool:
    return state.config.server_mode == ServerMode.HYBRID_TRAINING


def hybrid_iteration(state: ServerState, iteration: int | None = None) -> HybridIteration:
    """The Redis view of the worker's rounds of `iteration` (default: the server's current one)."""
    return HybridIteration(state.store, state.instance, state.iteration if iteration is None else iteration,
                           state.ttl)


async def hold_for_worker(state: ServerState, iteration: int, model: ModelWeights) -> None:
    """Keep the devices' aggregate of `iteration` for the workers instead of ending the iteration with it.

    The combine is over, so the iteration leaves `completing`: the timers run again on this server.
    """
    await hybrid_iteration(state, iteration).store_aggregate(await asyncio.to_thread(encode_model, model))
    state.completing.discard(iteration)
    logger.info("it %d: devices aggregated; waiting for a worker's pullWeight, pushWeight and pushMetrics",
                iteration)


async def finish_with_worker(state: ServerState, iteration: int, pushed: bytes) -> bool:
    """End `iteration` with the worker's pushed weights as its model; False when it had already ended.

    The model is published before the compare-and-set that ends the iteration, so that every server finds it when
    it switches; if the compare-and-set loses (a timer failed the iteration meanwhile), the model the cluster carries
    forward is published again in its place.
    """
    status = await state.store.read_status(state.instance)
    if status is None or status.iteration != iteration:
        return False
    durable = DurableUpdates(state.store, state.instance, iteration, state.ttl)
    await durable.publish_model(iteration, pushed)
    moved = await state.store.finish_iteration(state.instance, iteration, True, REASON_PUSH_METRICS,
                                               last_iteration(state.config))
    if moved:
        logger.info("it %d: %s", iteration, REASON_PUSH_METRICS)
        return True
    after = await state.store.read_status(state.instance)
    # Only a failure of this very iteration makes the published weights wrong; a concurrent pushMetrics that won
    # published the same weights, and a cluster that is further on owns the model key.
    if after is not None and after.iteration == iteration + 1 and not after.last_success:
        logger.warning("it %d: failed before the worker's metrics (%s); republishing the previous model", iteration,
                       after.last_result)
        await publish_latest_model(state)
    return False
