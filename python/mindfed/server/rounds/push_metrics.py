"""pushMetrics (spec §11.1): a hybrid worker's loss and accuracy, which complete a HYBRID_TRAINING iteration.

Over the node transport (`handle_worker`), in HYBRID_TRAINING: after the iteration's pushWeight the first pushMetrics
is kept for metrics.json and ends the iteration with the pushed weights (server/hybrid.py); a repeated one only
finishes what the first may have left undone (its server died between the two steps); one without a pushWeight of
the current iteration is answered OutOfTime (its window is over; the worker pulls the next one). In the other modes it
is only acknowledged, as before.

On the device HTTP port (`handle`) it is only acknowledged in FEDERATED_LEARNING, and refused (RequestError) in
HYBRID_TRAINING: workers are cluster members and reach servers over the node transport (mutual TLS under enable_ssl),
so nothing a device sends can end an iteration or set its model.
"""

from __future__ import annotations

import logging

from mindfed.errors import ProtocolError
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.requests import parse_request_push_metrics
from mindfed.protocol.response_builders import build_response_push_metrics
from mindfed.server.hybrid import finish_with_worker, hybrid_iteration, is_hybrid
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)


def _reply(code: ResponseCode) -> RoundReply:
    return RoundReply(build_response_push_metrics(retcode=int(code)), accepted=code == ResponseCode.SUCCEED)


async def handle(state: ServerState, body: bytes | bytearray) -> RoundReply:
    """The device HTTP route."""
    try:
        parse_request_push_metrics(body)
    except ProtocolError:
        return _reply(ResponseCode.RequestError)
    if is_hybrid(state):
        logger.warning("it %d: pushMetrics over HTTP refused: hybrid workers use the node transport", state.iteration)
        return _reply(ResponseCode.RequestError)
    return _reply(ResponseCode.SUCCEED)


async def handle_worker(state: ServerState, body: bytes | bytearray) -> RoundReply:
    """The node-transport request of a hybrid worker."""
    try:
        req = parse_request_push_metrics(body)
    except ProtocolError:
        return _reply(ResponseCode.RequestError)
    if not is_hybrid(state):
        return _reply(ResponseCode.SUCCEED)
    iteration = state.iteration
    hybrid = hybrid_iteration(state, iteration)
    pushed = await hybrid.pushed()
    if pushed is None:
        logger.warning("it %d: pushMetrics without a pushWeight of this iteration refused", iteration)
        return _reply(ResponseCode.OutOfTime)
    if await hybrid.record_metrics(req.loss, req.accuracy):
        logger.info("it %d: worker metrics loss %.6g, accuracy %.6g", iteration, req.loss, req.accuracy)
    await finish_with_worker(state, iteration, pushed)
    return _reply(ResponseCode.SUCCEED)
