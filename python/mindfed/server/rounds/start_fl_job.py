"""/startFLJob (spec §3.5): admit a device to the iteration and hand it the plan and the current model."""

from __future__ import annotations

import numpy as np

from mindfed.aggregation.rules import AggregationRule, is_control
from mindfed.cache.iteration import ADMITTED, ALREADY_DONE, DeviceMeta
from mindfed.compression import quantize_model
from mindfed.config.enums import DownloadCompressType, ServerMode, UploadCompressType
from mindfed.errors import ProtocolError
from mindfed.model.weights import ModelWeights
from mindfed.protocol.codes import MAX_DATA_SIZE, CompressType, ResponseCode
from mindfed.protocol.plain_text import TEXT_SAFEMODE, TEXT_VERIFY_FL_JOB, schema_invalid_text
from mindfed.protocol.requests import parse_request_fl_job
from mindfed.protocol.response_builders import build_response_fl_job
from mindfed.protocol.writer import Allocate
from mindfed.server.pki_check import fl_job_fields_missing, start_fl_job_refusal
from mindfed.server.plan import cipher_params, fl_plan
from mindfed.server.ring_upload import ring_mode
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.shared_body import SharedBody
from mindfed.server.signds_upload import is_signds, iteration_params
from mindfed.server.state import ServerState, now_ms

REASON_THRESHOLD = "Current amount for startFLJob has reached the threshold. Please startFLJob later."


def _refuse(state: ServerState, code: ResponseCode, reason: str, next_req_time: str = "") -> RoundReply:
    """A refusal still carries the FLPlan and cipher parameters: the Java client fails the job without them."""
    cfg = state.config
    return RoundReply(build_response_fl_job(
        retcode=int(code), reason=reason, iteration=state.iteration, is_selected=False,
        next_req_time=next_req_time or str(state.next_req_time_ms()), fl_plan=fl_plan(cfg), feature_map=[],
        upload_compress_type=int(_upload_type(state)), upload_sparse_rate=cfg.compression.upload_sparse_rate,
        cipher=cipher_params(cfg, state.pw_prime, state.signds.get(state.iteration)),
        upload_quant_bound=_quant_bound(state)))


def _upload_type(state: ServerState) -> CompressType:
    if ring_mode(state.config):
        return CompressType.SECURE_SPARSE_QUANT
    upload = state.config.compression.upload_compress_type
    return (CompressType.DIFF_SPARSE_QUANT if upload == UploadCompressType.DIFF_SPARSE_QUANT
            else CompressType.NO_COMPRESS)


def _quant_bound(state: ServerState) -> float | None:
    """The grid bound B of secure compressed uploads (mindfed-only); None omits the field: with the flag off the
    response is byte for byte what a MindSpore device always got."""
    return state.config.compression.secure_quant_bound if ring_mode(state.config) else None


async def handle(state: ServerState, body: bytes | bytearray) -> RoundReply:
    try:
        req = parse_request_fl_job(body)
    except ProtocolError:
        return _refuse(state, ResponseCode.RequestError, schema_invalid_text("RequestFLJob"))
    if not (req.has_fl_id and req.has_fl_name and req.has_timestamp) or fl_job_fields_missing(state, req):
        return RoundReply(TEXT_VERIFY_FL_JOB)  # MindSpore answers this one as plain text (spec §3.3)
    cfg, cache = state.config, state.cache()
    later = str(state.next_req_time_ms())
    threshold = cfg.round.start_fl_job_threshold
    # MindSpore checks the count first (spec §3.5 step 3), before the PKI and data-size checks. When those pass
    # anyway, the admission script's own first check (the same count, atomically) gives the same answer: one Redis
    # round trip per device instead of two.
    precheck = state.pki is not None or not 1 <= req.data_size <= MAX_DATA_SIZE
    if precheck and await cache.count("startFLJob") >= threshold:
        if await state.lagging():
            return RoundReply(TEXT_SAFEMODE)
        return _refuse(state, ResponseCode.OutOfTime, REASON_THRESHOLD, later)
    pki_refused = await start_fl_job_refusal(state, req)  # pki_verify: chain, signature, window (spec §10.2)
    if pki_refused is not None:
        return _refuse(state, *pki_refused, later)
    if req.data_size < 1:
        return _refuse(state, ResponseCode.OutOfTime, "FL job data size is not enough.", later)
    if req.data_size > MAX_DATA_SIZE:
        return _refuse(state, ResponseCode.OutOfTime, "FL job data size is too large.", later)
    started = now_ms()
    code, count = await cache.admit(DeviceMeta(req.fl_id, req.data_size, started, req.eval_data_size),
                                    threshold, started)
    if code == ALREADY_DONE:
        return _refuse(state, ResponseCode.OutOfTime, f"Updating device metadata failed for fl id {req.fl_id}", later)
    if code != ADMITTED:
        return RoundReply(TEXT_SAFEMODE) if await state.lagging() else _refuse(
            state, ResponseCode.OutOfTime, REASON_THRESHOLD, later)
    if count == 1 or state.iteration_start_ms is None:
        state.iteration_start_ms = started if count == 1 else (await cache.timers()).get("startFLJob", started)
    if is_signds(state):  # DSParams carry the iteration's r_est (adapted once per iteration, cache/signds.py)
        await iteration_params(state, state.iteration)
    return RoundReply(_success(state, req.download_compress_types), accepted=True)


def _success(state: ServerState, requested_compress: tuple[int, ...]) -> SharedBody:
    """The success response; byte-identical for every device of the iteration, so built once (spec §3.5)."""
    cfg = state.config
    quant = quant_download(state, requested_compress)
    model_iteration = state.iteration - 1
    key = ("startFLJob", state.iteration, model_iteration, quant, state.iteration_start_ms)
    upload = _upload_type(state)

    def build(into: Allocate) -> memoryview:
        model = state.models.get(model_iteration) or state.models.latest
        names = job_weight_names(state, model)
        return build_response_fl_job(
            retcode=int(ResponseCode.SUCCEED), reason="success", iteration=state.iteration, is_selected=True,
            next_req_time=str(state.next_req_time_ms()), fl_plan=fl_plan(cfg),
            feature_map=[] if quant else [(name, model.flat(name)) for name in names],
            upload_compress_type=int(upload), upload_sparse_rate=cfg.compression.upload_sparse_rate,
            download_compress_type=int(CompressType.QUANT if quant else CompressType.NO_COMPRESS),
            compress_feature_map=quantized(model, names) if quant else None,
            unsupervised_eval_flg=_eval_flag(state),
            cipher=cipher_params(cfg, state.pw_prime, state.signds.get(state.iteration)),
            upload_quant_bound=_quant_bound(state), into=into)

    return state.models.response(key, build)


def job_weight_names(state: ServerState, model: ModelWeights) -> list[str]:
    """The weights startFLJob hands out (spec §3.5 step 8): all of them, except in CLOUD_TRAINING, where workers
    keep their own weights and get only Scaffold's global control variates."""
    if state.config.server_mode != ServerMode.CLOUD_TRAINING:
        return model.names
    return [name for name in model.names if is_control(name)] if AggregationRule.of(state.config).scaffold else []


def quant_download(state: ServerState, requested_compress: tuple[int, ...]) -> bool:
    """QUANT iff configured and the device lists QUANT (2) in download_compress_types (spec §8.2)."""
    return (state.config.compression.download_compress_type == DownloadCompressType.QUANT
            and int(CompressType.QUANT) in requested_compress)


def quantized(model: ModelWeights, names: list[str]) -> list[tuple[str, np.ndarray, float, float]]:
    """The compress_feature_map of a QUANT download: each tensor over its own min/max."""
    return [(t.name, t.codes, t.min_val, t.max_val) for t in quantize_model({name: model.flat(name) for name in names})]


def _eval_flag(state: ServerState) -> str:
    cfg = state.config
    if str(cfg.unsupervised.eval_type) == "NOT_EVAL":
        return "NOT_EVAL"
    return str(cfg.encrypt.privacy_eval_type)
