"""What the ways an iteration ends on this server share (timers, completion, a disable, Redis losing the instance, a
stop, a new instance): the compare-and-set that fails it, waiting for the requests still inside a round, and
republishing the model the next iteration starts from.
"""

from __future__ import annotations

import asyncio
import logging
import time

from mindfed.cache.durability import DurableUpdates
from mindfed.privacy.accountant import last_iteration
from mindfed.server.partials import encode_model
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)


async def fail(state: ServerState, iteration: int, reason: str) -> None:
    """End `iteration` as failed, unless it has already ended (one compare-and-set in Redis, `finish_iteration.lua`).

    Args:
        state: the server's state.
        iteration: the iteration to end.
        reason: MindSpore's text for the failure, written to the instance status and the summary line.
    """
    if await state.store.finish_iteration(state.instance, iteration, False, reason, last_iteration(state.config)):
        logger.warning("it %d: %s", iteration, reason)


async def drain_requests(state: ServerState, timeout_s: float = 10.0) -> None:
    """Wait for requests already inside a round to finish before the iteration's state is reset."""
    deadline = time.monotonic() + timeout_s
    while state.in_flight > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    if state.in_flight:
        logger.warning("it %d: %d requests still running at the switch", state.iteration, state.in_flight)


async def publish_latest_model(state: ServerState) -> None:
    """Publish this server's newest model as the instance's: what servers that join next start from."""
    blob = await asyncio.to_thread(encode_model, state.models.latest)
    durable = DurableUpdates(state.store, state.instance, state.iteration, state.ttl)
    await durable.publish_model(state.models.latest_iteration, blob)
