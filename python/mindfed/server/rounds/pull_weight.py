"""pullWeight (spec §11.1): a hybrid worker asks for the iteration's aggregate, with MindSpore's answers.

Not aggregated yet → SucNotReady "The aggregation for the weights is not done yet."; another iteration → SucNotReady
naming both (the worker adopts the server's); an unknown weight → RequestError; else SUCCEED with the weights. Every
server answers from Redis (cache/hybrid.py), so MindSpore's forwarding of the request to the server that aggregated
(`SERVER_PULL_WEIGHT`) is not needed.
"""

from __future__ import annotations

import asyncio

from mindfed.errors import ProtocolError
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.hybrid import build_response_pull_weight, parse_request_pull_weight
from mindfed.protocol.plain_text import schema_invalid_text
from mindfed.server.hybrid import hybrid_iteration
from mindfed.server.partials import decode_model
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.state import ServerState

REASON_NOT_AGGREGATED = "The aggregation for the weights is not done yet."


def _reply(state: ServerState, code: ResponseCode, reason: str) -> RoundReply:
    return RoundReply(build_response_pull_weight(int(code), reason, state.iteration, []))


async def handle(state: ServerState, body: bytes | bytearray) -> RoundReply:
    try:
        req = parse_request_pull_weight(body)
    except ProtocolError:
        return _reply(state, ResponseCode.RequestError, schema_invalid_text("RequestPullWeight"))
    iteration = state.iteration
    blob = await hybrid_iteration(state, iteration).current()
    if blob is None:
        return _reply(state, ResponseCode.SucNotReady, REASON_NOT_AGGREGATED)
    if req.iteration != iteration:
        return _reply(state, ResponseCode.SucNotReady,
                      f"PullWeight iteration {req.iteration} is invalid. Server current iteration: {iteration}")
    model = decode_model(blob)  # views into the blob, no copy
    names = list(req.weight_names) or model.names  # none named: all of them
    unknown = [n for n in names if n not in model]
    if unknown:
        return _reply(state, ResponseCode.RequestError, f"Parameter {unknown[0]} is not registered in server.")
    body_out = await asyncio.to_thread(
        build_response_pull_weight, int(ResponseCode.SUCCEED),
        f"Pulling weight by weight names for iteration {iteration} success.", iteration,
        [(n, model.flat(n)) for n in names])
    return RoundReply(body_out, accepted=True)
