"""pushWeight (spec §11.1): a hybrid worker's retrained weights become the iteration's model.

The first accepted push of an iteration wins (later ones are told "Model of iteration of N has finished", as
MindSpore); it replaces the named tensors of the devices' aggregate (unnamed ones keep the aggregate's values). Unlike
MindSpore, a push for an iteration that has already ended is refused with OutOfTime instead of being taken for the
current one (its weights were trained from an older model), and a push before the devices' aggregate exists, or with
unknown names, wrong sizes or non-finite values, is refused instead of being copied into the model.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from mindfed.errors import ProtocolError
from mindfed.model.weights import ModelWeights
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.hybrid import PushWeightRequest, build_response_push_weight, parse_request_push_weight
from mindfed.protocol.plain_text import schema_invalid_text
from mindfed.server.hybrid import hybrid_iteration
from mindfed.server.partials import decode_model, encode_model
from mindfed.server.rounds.pull_weight import REASON_NOT_AGGREGATED
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)

REASON_PUSHED = "PushWeight succeed."


def _reply(state: ServerState, code: ResponseCode, reason: str) -> RoundReply:
    return RoundReply(build_response_push_weight(int(code), reason, state.iteration),
                      accepted=code == ResponseCode.SUCCEED)


def pushed_model(aggregate: ModelWeights, req: PushWeightRequest) -> ModelWeights | str:
    """The aggregate with the pushed tensors in place, or why the push cannot be taken."""
    if not req.feature_map:
        return "PushWeight feature map is empty."
    updates: dict[str, np.ndarray] = {}
    for tensor in req.feature_map:
        if tensor.name not in aggregate:
            return f"Weight {tensor.name} is not registered in server."
        if tensor.data.size != aggregate.sizes[tensor.name]:
            return (f"Weight {tensor.name} has {tensor.data.size} elements, the model's has "
                    f"{aggregate.sizes[tensor.name]}.")
        if not np.isfinite(tensor.data).all():
            return f"Weight {tensor.name} is not finite."
        updates[tensor.name] = tensor.data.reshape(aggregate.shapes[tensor.name])
    return aggregate.replace(updates)


async def handle(state: ServerState, body: bytes | bytearray) -> RoundReply:
    try:
        req = parse_request_push_weight(body)
    except ProtocolError:
        return _reply(state, ResponseCode.RequestError, schema_invalid_text("RequestPushWeight"))
    iteration = state.iteration
    if req.iteration != iteration:
        reason = f"PushWeight iteration number is invalid:{req.iteration}, current iteration:{iteration}"
        # behind: that iteration is over, its weights are stale; ahead: this server has not switched yet, retry
        return _reply(state, ResponseCode.OutOfTime if req.iteration < iteration else ResponseCode.SucNotReady,
                      reason)
    hybrid = hybrid_iteration(state, iteration)
    if await hybrid.has_pushed():
        return _reply(state, ResponseCode.SUCCEED, f"Model of iteration of {iteration} has finished")
    aggregate = await hybrid.aggregate()
    if aggregate is None:
        return _reply(state, ResponseCode.SucNotReady, REASON_NOT_AGGREGATED)
    model = pushed_model(decode_model(aggregate), req)
    if isinstance(model, str):
        logger.warning("it %d: pushWeight refused: %s", iteration, model)
        return _reply(state, ResponseCode.RequestError, model)
    if not await hybrid.push(await asyncio.to_thread(encode_model, model)):
        return _reply(state, ResponseCode.SUCCEED, f"Model of iteration of {iteration} has finished")
    logger.info("it %d: a worker pushed the iteration's weights", iteration)
    return _reply(state, ResponseCode.SUCCEED, REASON_PUSHED)
