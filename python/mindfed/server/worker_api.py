"""The hybrid worker's requests over the node transport (spec §11.1): pullWeight, pushWeight, pushMetrics.

The same gating as the device rounds comes first (rounds/gate.py: safemode, disabled or finished job, a stopping
server), answered with MindSpore's plain texts, on which a worker waits and asks again. A worker of a job that is not
in HYBRID_TRAINING is told so (RequestError) rather than served.
"""

from __future__ import annotations

import logging

from mindfed.errors import CacheError
from mindfed.net.endpoint import Frame
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.hybrid import (
    PULL_WEIGHT,
    PUSH_METRICS,
    PUSH_WEIGHT,
    ROUND_OF_FRAME,
    build_response_pull_weight,
    build_response_push_weight,
)
from mindfed.protocol.plain_text import TEXT_INNER_ERROR, TEXT_SAFEMODE
from mindfed.server.hybrid import is_hybrid
from mindfed.server.rounds import pull_weight, push_metrics, push_weight
from mindfed.server.rounds.gate import refusal
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.shared_body import SharedBody
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)

HANDLERS = {PULL_WEIGHT: pull_weight.handle, PUSH_WEIGHT: push_weight.handle, PUSH_METRICS: push_metrics.handle_worker}


def _wrong_mode(state: ServerState, frame_type: int) -> bytes:
    reason = (f"{ROUND_OF_FRAME[frame_type]} is served in HYBRID_TRAINING only; this job's server_mode is "
              f"{state.config.server_mode}")
    if frame_type == PULL_WEIGHT:
        return build_response_pull_weight(int(ResponseCode.RequestError), reason, state.iteration, [])
    return build_response_push_weight(int(ResponseCode.RequestError), reason, state.iteration)


async def answer(state: ServerState, frame: Frame) -> bytes | memoryview:
    """The reply to one worker request (`frame.type` in protocol.hybrid.WORKER_FRAME_TYPES)."""
    round_name = ROUND_OF_FRAME[frame.type]
    if frame.type != PUSH_METRICS and not is_hybrid(state):
        return _wrong_mode(state, frame.type)
    refused = refusal(state, round_name)
    if refused is not None:
        return refused.encode()
    state.in_flight += 1
    try:
        reply: RoundReply = await HANDLERS[frame.type](state, bytearray(frame.payload.data))
    except CacheError as exc:
        logger.warning("it %d: %s answered safemode: %s", state.iteration, round_name, exc)
        state.cache_ok = False
        return TEXT_SAFEMODE.encode()
    except Exception:
        logger.exception("it %d: %s failed on a worker request", state.iteration, round_name)
        return TEXT_INNER_ERROR.encode()
    finally:
        state.in_flight -= 1
    if isinstance(reply.body, SharedBody):
        return reply.body.view()  # sent in place: the view keeps the mapping alive until the node has written it
    return reply.body.encode() if isinstance(reply.body, str) else reply.body
