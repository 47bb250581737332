"""What becomes of the updates of a server that leaves in the middle of an iteration (docs/cluster.md, Durability).

A dead peer's updates are taken over by the living: its durable updates in Redis are counted as folded, so the
cluster reaches the threshold without it, and a stalled aggregation is restarted. A server that is stopped either
fails the iteration (MindSpore's rule, `abandon_on_stop`) or hands its updates over the same way (node.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from mindfed.cache.durability import DurableUpdates
from mindfed.cache.store import RUNNING
from mindfed.server.iteration_end import fail
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)

REASON_SERVER_EXIT = "Server that processed updateModel requests exited, current iteration: {}"
WATCH_PERIOD_S = 0.5


async def watch_participants(state: ServerState) -> None:
    """Take over the updates of servers that died this iteration, and restart a stalled aggregation."""
    cache = state.cache()
    durable = DurableUpdates(state.store, state.instance, state.iteration, state.ttl)
    participants = await cache.servers_with_updates()
    if participants:
        alive = await state.store.alive_servers(state.instance)
        dead = set(participants) - set(alive) - {state.node_id} - await durable.repaired()
        for node in sorted(dead):
            repair = await durable.repair(node)
            if not repair.already_done:
                logger.warning("it %d: server %s died: kept its %d durable updates, released %d reservations",
                               state.iteration, node, repair.kept, repair.released)
    if await cache.folded_total() >= state.config.round.update_model_threshold and state.on_all_folded is not None:
        state.on_all_folded(state.iteration)  # no-op unless no server holds the aggregator role


async def abandon_on_stop(state: ServerState, tick: Callable[[], Awaitable[None]]) -> None:
    """Stopping with updates of the running iteration: fail it (MindSpore's rule, spec §4.2) and take the switch
    here, so this server can still write the iteration's summary line before it leaves.

    Args:
        state: the server's state.
        tick: one tick of the iteration driver, which takes the switch.
    """
    iteration, cache = state.iteration, state.cache()
    if state.running_state != RUNNING:
        return  # nothing under way
    if await cache.folded_total() >= state.config.round.update_model_threshold:
        return  # every update the iteration needs is folded: it is being combined (maybe elsewhere), not lost
    if state.node_id not in await cache.servers_with_updates():
        return  # a server without updates leaves without failing anything (spec §14)
    if state.iteration != iteration:
        return  # it ended while we looked
    await fail(state, iteration, REASON_SERVER_EXIT.format(iteration))
    await tick()
