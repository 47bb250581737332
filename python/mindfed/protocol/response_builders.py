"""Server-side builders of the device responses.

Each returns the finished FlatBuffer as bytes, without a file identifier (MindSpore's
server calls `Finish()` without one). Scalars equal to their schema default are not
written, as with every FlatBuffers builder; readers see the default either way.
The two that carry a model (startFLJob's and getModel's) also build into a buffer the
caller allocates (`into`), and then return a view of the message there.
"""

from __future__ import annotations

from typing import overload

import flatbuffers

from mindfed.protocol.generated import CipherPublicParams as CppGen
from mindfed.protocol.generated import DPParams as DpGen
from mindfed.protocol.generated import DSParams as DsGen
from mindfed.protocol.generated import FLPlan as PlanGen
from mindfed.protocol.generated import PWParams as PwGen
from mindfed.protocol.generated import ResponseFLJob as RfjGen
from mindfed.protocol.generated import ResponseGetModel as RgmGen
from mindfed.protocol.generated import ResponseGetResult as RgrGen
from mindfed.protocol.generated import ResponsePushMetrics as RpmGen
from mindfed.protocol.generated import ResponseUpdateModel as RumGen
from mindfed.protocol.plan import PW_P_BYTES, CipherParams, FLPlanParams
from mindfed.protocol.writer import (
    Allocate,
    CompressedWeights,
    Weights,
    compress_feature_maps,
    feature_maps,
    finish,
    finish_into,
    new_builder,
    payload_size,
)


def _cipher(builder: flatbuffers.Builder, cipher: CipherParams) -> int:
    encrypt_type = builder.CreateString(cipher.encrypt_type)
    p = builder.CreateByteVector(bytes(PW_P_BYTES))  # MindSpore always sends zeros
    prime = builder.CreateByteVector(bytes(cipher.pw_prime))
    PwGen.PWParamsStart(builder)
    PwGen.PWParamsAddT(builder, cipher.pw_t)
    PwGen.PWParamsAddP(builder, p)
    PwGen.PWParamsAddG(builder, cipher.pw_g)
    PwGen.PWParamsAddPrime(builder, prime)
    pw = PwGen.PWParamsEnd(builder)
    DpGen.DPParamsStart(builder)
    DpGen.DPParamsAddDpEps(builder, cipher.dp_eps)
    DpGen.DPParamsAddDpDelta(builder, cipher.dp_delta)
    DpGen.DPParamsAddDpNormClip(builder, cipher.dp_norm_clip)
    dp = DpGen.DPParamsEnd(builder)
    DsGen.DSParamsStart(builder)
    DsGen.DSParamsAddSignK(builder, cipher.sign_k)
    DsGen.DSParamsAddSignEps(builder, cipher.sign_eps)
    DsGen.DSParamsAddSignThrRatio(builder, cipher.sign_thr_ratio)
    DsGen.DSParamsAddSignGlobalLr(builder, cipher.sign_global_lr)
    DsGen.DSParamsAddSignDimOut(builder, cipher.sign_dim_out)
    DsGen.DSParamsAddSigndsREst(builder, cipher.signds_r_est)
    DsGen.DSParamsAddSigndsIsReached(builder, cipher.signds_is_reached)
    ds = DsGen.DSParamsEnd(builder)
    CppGen.CipherPublicParamsStart(builder)
    CppGen.CipherPublicParamsAddEncryptType(builder, encrypt_type)
    CppGen.CipherPublicParamsAddPwParams(builder, pw)
    CppGen.CipherPublicParamsAddDpParams(builder, dp)
    CppGen.CipherPublicParamsAddDsParams(builder, ds)
    CppGen.CipherPublicParamsAddLaplaceParams(builder, cipher.laplace_params)
    return int(CppGen.CipherPublicParamsEnd(builder))


def _fl_plan(builder: flatbuffers.Builder, plan: FLPlanParams, cipher: CipherParams) -> int:
    # Only the fields MindSpore sets (spec §3.5 step 8): early_stop, aggregation,
    # metrics and shuffle stay absent so devices see their defaults.
    server_mode = builder.CreateString(plan.server_mode)
    fl_name = builder.CreateString(plan.fl_name)
    cipher_off = _cipher(builder, cipher)
    PlanGen.FLPlanStart(builder)
    PlanGen.FLPlanAddServerMode(builder, server_mode)
    PlanGen.FLPlanAddFlName(builder, fl_name)
    PlanGen.FLPlanAddIterations(builder, plan.iterations)
    PlanGen.FLPlanAddEpochs(builder, plan.epochs)
    PlanGen.FLPlanAddMiniBatch(builder, plan.mini_batch)
    PlanGen.FLPlanAddLr(builder, plan.lr)
    PlanGen.FLPlanAddCipher(builder, cipher_off)
    return int(PlanGen.FLPlanEnd(builder))


@overload
def build_response_fl_job(
    retcode: int, reason: str, iteration: int = ..., is_selected: bool = ..., next_req_time: str = ...,
    fl_plan: FLPlanParams | None = ..., feature_map: Weights | None = ..., upload_compress_type: int = ...,
    upload_sparse_rate: float = ..., download_compress_type: int = ..., compress_feature_map: CompressedWeights | None
    = ..., unsupervised_eval_flg: str = ..., cipher: CipherParams | None = ..., upload_quant_bound: float | None = ...,
    *, into: None = None) -> bytes: ...


@overload
def build_response_fl_job(
    retcode: int, reason: str, iteration: int = ..., is_selected: bool = ..., next_req_time: str = ...,
    fl_plan: FLPlanParams | None = ..., feature_map: Weights | None = ..., upload_compress_type: int = ...,
    upload_sparse_rate: float = ..., download_compress_type: int = ..., compress_feature_map: CompressedWeights | None
    = ..., unsupervised_eval_flg: str = ..., cipher: CipherParams | None = ..., upload_quant_bound: float | None = ...,
    *, into: Allocate) -> memoryview: ...


def build_response_fl_job(
    retcode: int,
    reason: str,
    iteration: int = 0,
    is_selected: bool = False,
    next_req_time: str = "",
    fl_plan: FLPlanParams | None = None,
    feature_map: Weights | None = None,
    upload_compress_type: int = 0,
    upload_sparse_rate: float = 0.0,
    download_compress_type: int = 0,
    compress_feature_map: CompressedWeights | None = None,
    unsupervised_eval_flg: str = "",
    cipher: CipherParams | None = None,
    upload_quant_bound: float | None = None,
    *,
    into: Allocate | None = None,
) -> bytes | memoryview:
    """Builds a ResponseFLJob.

    Args:
        retcode: A ResponseCode value.
        reason: Human-readable reason ("success" on success).
        iteration: The server's current iteration.
        is_selected: Whether the device takes part (MindSpore: true on success).
        next_req_time: Decimal ms-since-epoch string of the next iteration's start.
        fl_plan: The training plan, or None to omit FLPlan.
        feature_map: (name, weights) of the model to train from, float32 on the wire.
        upload_compress_type: A CompressType value the device must upload with.
        upload_sparse_rate: Sparsity for DIFF_SPARSE_QUANT uploads.
        download_compress_type: CompressType of this response's weights.
        compress_feature_map: (name, int8 codes, min, max) when download is QUANT.
        unsupervised_eval_flg: "NOT_EVAL", "NOT_ENCRYPT" or "LAPLACE" ("" omits it).
        cipher: Cipher parameters inside FLPlan; defaults to `CipherParams()`.
        upload_quant_bound: mindfed-only, with upload_compress_type SECURE_SPARSE_QUANT: the grid bound B. None
            omits the field, so the bytes are exactly what they were before it existed (MindSpore devices).
        into: builds into the buffer it allocates (writer.new_builder).

    Returns:
        The FlatBuffer bytes (no file identifier); with `into`, a view of them where they were built.
    """
    builder = new_builder(payload_size(feature_map, compress_feature_map), into)
    reason_off = builder.CreateString(reason)
    next_req_off = builder.CreateString(next_req_time)
    eval_flg_off = builder.CreateString(unsupervised_eval_flg) if unsupervised_eval_flg else None
    plan_off = None if fl_plan is None else _fl_plan(builder, fl_plan, cipher or CipherParams())
    fm_off = None if feature_map is None else feature_maps(builder, feature_map)
    cfm_off = None if compress_feature_map is None else compress_feature_maps(builder, compress_feature_map)
    RfjGen.ResponseFLJobStart(builder)
    RfjGen.ResponseFLJobAddRetcode(builder, int(retcode))
    RfjGen.ResponseFLJobAddReason(builder, reason_off)
    RfjGen.ResponseFLJobAddIteration(builder, iteration)
    RfjGen.ResponseFLJobAddIsSelected(builder, is_selected)
    RfjGen.ResponseFLJobAddNextReqTime(builder, next_req_off)
    if plan_off is not None:
        RfjGen.ResponseFLJobAddFlPlanConfig(builder, plan_off)
    if fm_off is not None:
        RfjGen.ResponseFLJobAddFeatureMap(builder, fm_off)
    RfjGen.ResponseFLJobAddUploadCompressType(builder, int(upload_compress_type))
    RfjGen.ResponseFLJobAddUploadSparseRate(builder, upload_sparse_rate)
    RfjGen.ResponseFLJobAddDownloadCompressType(builder, int(download_compress_type))
    if cfm_off is not None:
        RfjGen.ResponseFLJobAddCompressFeatureMap(builder, cfm_off)
    if eval_flg_off is not None:
        RfjGen.ResponseFLJobAddUnsupervisedEvalFlg(builder, eval_flg_off)
    if upload_quant_bound is not None:
        RfjGen.ResponseFLJobAddUploadQuantBound(builder, upload_quant_bound)
    root = RfjGen.ResponseFLJobEnd(builder)
    return finish(builder, root) if into is None else finish_into(builder, root)


def build_response_update_model(retcode: int, reason: str, next_req_time: str, timestamp: str = "") -> bytes:
    """Builds a ResponseUpdateModel (MindSpore's success reason is "success not ready").

    Args:
        retcode: A ResponseCode value.
        reason: Human-readable reason.
        next_req_time: Decimal ms-since-epoch string.
        timestamp: Optional timestamp string ("" omits it).

    Returns:
        The FlatBuffer bytes.
    """
    builder = new_builder(0)
    reason_off = builder.CreateString(reason)
    next_req_off = builder.CreateString(next_req_time)
    timestamp_off = builder.CreateString(timestamp) if timestamp else None
    RumGen.ResponseUpdateModelStart(builder)
    RumGen.ResponseUpdateModelAddRetcode(builder, int(retcode))
    RumGen.ResponseUpdateModelAddReason(builder, reason_off)
    RumGen.ResponseUpdateModelAddNextReqTime(builder, next_req_off)
    if timestamp_off is not None:
        RumGen.ResponseUpdateModelAddTimestamp(builder, timestamp_off)
    return finish(builder, RumGen.ResponseUpdateModelEnd(builder))


@overload
def build_response_get_model(
    retcode: int, reason: str, iteration: int, feature_map: Weights | None, timestamp: str,
    download_compress_type: int = ..., compress_feature_map: CompressedWeights | None = ..., *, into: None = None,
) -> bytes: ...


@overload
def build_response_get_model(
    retcode: int, reason: str, iteration: int, feature_map: Weights | None, timestamp: str,
    download_compress_type: int = ..., compress_feature_map: CompressedWeights | None = ..., *, into: Allocate,
) -> memoryview: ...


def build_response_get_model(
    retcode: int,
    reason: str,
    iteration: int,
    feature_map: Weights | None,
    timestamp: str,
    download_compress_type: int = 0,
    compress_feature_map: CompressedWeights | None = None,
    *,
    into: Allocate | None = None,
) -> bytes | memoryview:
    """Builds a ResponseGetModel.

    Args:
        retcode: A ResponseCode value.
        reason: Human-readable reason.
        iteration: The server's current iteration.
        feature_map: (name, weights) of the requested model, or None to omit.
        timestamp: The server's next_req_time (getModel has no next_req_time field).
        download_compress_type: CompressType of the weights sent.
        compress_feature_map: (name, int8 codes, min, max) when QUANT.
        into: builds into the buffer it allocates (writer.new_builder).

    Returns:
        The FlatBuffer bytes; with `into`, a view of them where they were built.
    """
    builder = new_builder(payload_size(feature_map, compress_feature_map), into)
    reason_off = builder.CreateString(reason)
    timestamp_off = builder.CreateString(timestamp)
    fm_off = None if feature_map is None else feature_maps(builder, feature_map)
    cfm_off = None if compress_feature_map is None else compress_feature_maps(builder, compress_feature_map)
    RgmGen.ResponseGetModelStart(builder)
    RgmGen.ResponseGetModelAddRetcode(builder, int(retcode))
    RgmGen.ResponseGetModelAddReason(builder, reason_off)
    RgmGen.ResponseGetModelAddIteration(builder, iteration)
    if fm_off is not None:
        RgmGen.ResponseGetModelAddFeatureMap(builder, fm_off)
    RgmGen.ResponseGetModelAddTimestamp(builder, timestamp_off)
    RgmGen.ResponseGetModelAddDownloadCompressType(builder, int(download_compress_type))
    if cfm_off is not None:
        RgmGen.ResponseGetModelAddCompressFeatureMap(builder, cfm_off)
    root = RgmGen.ResponseGetModelEnd(builder)
    return finish(builder, root) if into is None else finish_into(builder, root)


def build_response_get_result(retcode: int, reason: str, iteration: int, timestamp: str) -> bytes:
    """Builds a ResponseGetResult; `timestamp` carries the server's next_req_time.

    Returns:
        The FlatBuffer bytes.
    """
    builder = new_builder(0)
    reason_off = builder.CreateString(reason)
    timestamp_off = builder.CreateString(timestamp)
    RgrGen.ResponseGetResultStart(builder)
    RgrGen.ResponseGetResultAddRetcode(builder, int(retcode))
    RgrGen.ResponseGetResultAddReason(builder, reason_off)
    RgrGen.ResponseGetResultAddIteration(builder, iteration)
    RgrGen.ResponseGetResultAddTimestamp(builder, timestamp_off)
    return finish(builder, RgrGen.ResponseGetResultEnd(builder))


def build_response_push_metrics(retcode: int) -> bytes:
    """Builds a ResponsePushMetrics.

    Returns:
        The FlatBuffer bytes.
    """
    builder = new_builder(0)
    RpmGen.ResponsePushMetricsStart(builder)
    RpmGen.ResponsePushMetricsAddRetcode(builder, int(retcode))
    return finish(builder, RpmGen.ResponsePushMetricsEnd(builder))
