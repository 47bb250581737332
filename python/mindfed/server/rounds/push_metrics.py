"""/pushMetrics: a hybrid worker's loss and accuracy (spec §11.1). In FEDERATED_LEARNING mode only acknowledged."""

from __future__ import annotations

from mindfed.errors import ProtocolError
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.requests import parse_request_push_metrics
from mindfed.protocol.response_builders import build_response_push_metrics
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.state import ServerState


async def handle(state: ServerState, body: bytes | bytearray) -> RoundReply:
    try:
        parse_request_push_metrics(body)
    except ProtocolError:
        return RoundReply(build_response_push_metrics(retcode=int(ResponseCode.RequestError)))
    return RoundReply(build_response_push_metrics(retcode=int(ResponseCode.SUCCEED)), accepted=True)
