"""/getModel and /getResult (spec §3.5): the model of iteration i is served once the cluster has moved past i."""

from __future__ import annotations

from mindfed.aggregation.rules import is_control
from mindfed.config.enums import ServerMode
from mindfed.errors import ProtocolError
from mindfed.protocol.codes import CompressType, ResponseCode
from mindfed.protocol.plain_text import schema_invalid_text
from mindfed.protocol.requests import parse_request_get_model, parse_request_get_result
from mindfed.protocol.response_builders import build_response_get_model, build_response_get_result
from mindfed.protocol.writer import Allocate
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.rounds.start_fl_job import quant_download, quantized
from mindfed.server.state import ServerState

REASON_NOT_READY = ("The model is not ready yet for iteration {}. Maybe this is because\n"
                    "1. Client doesn't not send enough update model request.\n"
                    "2. Worker has not push weights to server.")


def _ready(state: ServerState, iteration: int) -> bool:
    """The current iteration's model is served only after the switch, as in MindSpore (it stores the model in the
    switch): a device told "ready" can rely on the cluster having moved on, even if this server stops right after."""
    return iteration != state.iteration


async def _hold(state: ServerState, iteration: int) -> bool:
    """Whether the model of `iteration` is ready, after waiting up to `client.poll_hold_ms` for it (long polling,
    server/iteration_watch.py); a stopping server answers at once."""
    if not _ready(state, iteration):
        state.in_flight -= 1  # parked, it is not in flight: the switch it waits for drains what is (drain_requests)
        try:
            await state.iteration_watch.hold(lambda: not _ready(state, iteration) and not state.stopping,
                                             state.config.client.poll_hold_ms / 1000)
        finally:
            state.in_flight += 1
    return _ready(state, iteration)


def _served_iteration(state: ServerState, requested: int) -> int:
    """The stored model for `requested`, else the newest finished one (only the last 3 are kept)."""
    return requested if state.models.get(requested) is not None else state.iteration - 1


async def handle_get_model(state: ServerState, body: bytes | bytearray) -> RoundReply:
    try:
        req = parse_request_get_model(body)
    except ProtocolError:
        return RoundReply(build_response_get_model(retcode=int(ResponseCode.RequestError),
                                                   reason=schema_invalid_text("RequestGetModel"),
                                                   iteration=state.iteration, feature_map=None, timestamp=""))
    if not await _hold(state, req.iteration):
        return RoundReply(build_response_get_model(retcode=int(ResponseCode.SucNotReady),
                                                   reason=REASON_NOT_READY.format(req.iteration),
                                                   iteration=state.iteration, feature_map=None,
                                                   timestamp=str(state.next_req_time_ms())))
    timestamp = str(state.next_req_time_ms())
    served = _served_iteration(state, req.iteration)
    quant = quant_download(state, req.download_compress_types)
    compress = CompressType.QUANT if quant else CompressType.NO_COMPRESS
    # One build per (iteration, model, compression), as MindSpore caches it: the timestamp is the first asker's.
    # Keyed on it too, every asker after a switch (next_req_time then moves with the clock) rebuilt the whole model.
    key = ("getModel", state.iteration, req.iteration, served, int(compress))

    def build(into: Allocate) -> memoryview:
        model = state.models.get(served) or state.models.latest
        hybrid = state.config.server_mode == ServerMode.HYBRID_TRAINING
        reason = f"Get model for iteration {req.iteration}"
        weights = [n for n in model.names if not is_control(n)]  # Scaffold's control variates are not the model
        if quant:  # QUANT: all weights (spec §3.5 getModel)
            return build_response_get_model(retcode=int(ResponseCode.SUCCEED), reason=reason,
                                            iteration=state.iteration, feature_map=[], timestamp=timestamp,
                                            download_compress_type=int(compress),
                                            compress_feature_map=quantized(model, weights), into=into)
        names = [n for n in weights if hybrid or model.require_aggr[n]]
        return build_response_get_model(retcode=int(ResponseCode.SUCCEED), reason=reason, iteration=state.iteration,
                                        feature_map=[(n, model.flat(n)) for n in names], timestamp=timestamp,
                                        download_compress_type=int(compress), into=into)

    return RoundReply(state.models.response(key, build), accepted=True)


async def handle_get_result(state: ServerState, body: bytes | bytearray) -> RoundReply:
    try:
        req = parse_request_get_result(body)
    except ProtocolError:
        return RoundReply(build_response_get_result(retcode=int(ResponseCode.RequestError),
                                                    reason=schema_invalid_text("RequestGetResult"),
                                                    iteration=state.iteration, timestamp=""))
    ready = await _hold(state, req.iteration)
    timestamp = str(state.next_req_time_ms())
    if not ready:
        return RoundReply(build_response_get_result(retcode=int(ResponseCode.SucNotReady),
                                                    reason=REASON_NOT_READY.format(req.iteration),
                                                    iteration=state.iteration, timestamp=timestamp))
    return RoundReply(build_response_get_result(retcode=int(ResponseCode.SUCCEED),
                                                reason=f"Get result for iteration {req.iteration}",
                                                iteration=state.iteration, timestamp=timestamp), accepted=True)
