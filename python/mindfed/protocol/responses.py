"""Device-side parsers of server responses: verify, then read through the generated code.

A device must survive a broken or hostile server too, so responses are verified like
requests; failures raise ProtocolError("The schema of {Table} is invalid.").
Plain-text bodies (safemode, finished, ...) are not FlatBuffers: check them first with
`plain_text.classify_plain_text`.
"""

from __future__ import annotations

from typing import Any

from mindfed.protocol import reader
from mindfed.protocol.generated.ResponseFLJob import ResponseFLJob
from mindfed.protocol.generated.ResponseGetModel import ResponseGetModel
from mindfed.protocol.generated.ResponseGetResult import ResponseGetResult
from mindfed.protocol.generated.ResponsePushMetrics import ResponsePushMetrics
from mindfed.protocol.generated.ResponseUpdateModel import ResponseUpdateModel
from mindfed.protocol.plan import CipherParams
from mindfed.protocol.reader import Buffer, text
from mindfed.protocol.verifier import verify
from mindfed.protocol.views import (
    FLPlanView,
    ResponseFLJobView,
    ResponseGetModelView,
    ResponseGetResultView,
    ResponseUpdateModelView,
)


def _cipher(cipher: Any, table: str) -> CipherParams:
    pw, dp, ds = cipher.PwParams(), cipher.DpParams(), cipher.DsParams()
    fields: dict[str, Any] = {"encrypt_type": text(cipher.EncryptType(), table)}
    if pw is not None:
        fields.update(pw_t=pw.T(), pw_g=pw.G(), pw_prime=reader.raw_bytes(pw, "Prime"))
    if dp is not None:
        fields.update(dp_eps=dp.DpEps(), dp_delta=dp.DpDelta(), dp_norm_clip=dp.DpNormClip())
    if ds is not None:
        fields.update(
            sign_k=ds.SignK(),
            sign_eps=ds.SignEps(),
            sign_thr_ratio=ds.SignThrRatio(),
            sign_global_lr=ds.SignGlobalLr(),
            sign_dim_out=ds.SignDimOut(),
            signds_r_est=ds.SigndsREst(),
            signds_is_reached=ds.SigndsIsReached(),
        )
    fields["laplace_params"] = cipher.LaplaceParams()
    return CipherParams(**fields)


def _fl_plan(plan: Any, table: str) -> FLPlanView:
    cipher_table = plan.Cipher()
    cipher = None if cipher_table is None else _cipher(cipher_table, table)
    return FLPlanView(
        server_mode=text(plan.ServerMode(), table),
        fl_name=text(plan.FlName(), table),
        iterations=plan.Iterations(),
        epochs=plan.Epochs(),
        mini_batch=plan.MiniBatch(),
        lr=plan.Lr(),
        encrypt_type="" if cipher is None else cipher.encrypt_type,
        cipher=cipher,
    )


def parse_response_fl_job(buf: Buffer) -> ResponseFLJobView:
    """Parses a /startFLJob response FlatBuffer.

    Args:
        buf: The raw response body (keep it alive while the view's tensors are used).

    Returns:
        All fields; `fl_plan` is None if the server sent no FLPlan.

    Raises:
        ProtocolError: "The schema of ResponseFLJob is invalid."
    """
    table = "ResponseFLJob"
    verify(buf, table)
    rsp = ResponseFLJob.GetRootAs(buf, 0)
    plan = rsp.FlPlanConfig()
    return ResponseFLJobView(
        retcode=rsp.Retcode(),
        reason=text(rsp.Reason(), table),
        iteration=rsp.Iteration(),
        is_selected=rsp.IsSelected(),
        next_req_time=text(rsp.NextReqTime(), table),
        fl_plan=None if plan is None else _fl_plan(plan, table),
        feature_map=reader.feature_map(rsp, table),
        timestamp=text(rsp.Timestamp(), table),
        upload_compress_type=rsp.UploadCompressType(),
        upload_sparse_rate=rsp.UploadSparseRate(),
        download_compress_type=rsp.DownloadCompressType(),
        compress_feature_map=reader.compressed_tensors(rsp.CompressFeatureMapLength(), rsp.CompressFeatureMap, table),
        unsupervised_eval_flg=text(rsp.UnsupervisedEvalFlg(), table),
        upload_quant_bound=rsp.UploadQuantBound(),
    )


def parse_response_update_model(buf: Buffer) -> ResponseUpdateModelView:
    """Parses an /updateModel response FlatBuffer.

    Raises:
        ProtocolError: "The schema of ResponseUpdateModel is invalid."
    """
    table = "ResponseUpdateModel"
    verify(buf, table)
    rsp = ResponseUpdateModel.GetRootAs(buf, 0)
    return ResponseUpdateModelView(
        retcode=rsp.Retcode(),
        reason=text(rsp.Reason(), table),
        next_req_time=text(rsp.NextReqTime(), table),
        timestamp=text(rsp.Timestamp(), table),
    )


def parse_response_get_model(buf: Buffer) -> ResponseGetModelView:
    """Parses a /getModel response FlatBuffer; tensors are views into `buf`.

    Raises:
        ProtocolError: "The schema of ResponseGetModel is invalid."
    """
    table = "ResponseGetModel"
    verify(buf, table)
    rsp = ResponseGetModel.GetRootAs(buf, 0)
    return ResponseGetModelView(
        retcode=rsp.Retcode(),
        reason=text(rsp.Reason(), table),
        iteration=rsp.Iteration(),
        feature_map=reader.feature_map(rsp, table),
        timestamp=text(rsp.Timestamp(), table),
        download_compress_type=rsp.DownloadCompressType(),
        compress_feature_map=reader.compressed_tensors(rsp.CompressFeatureMapLength(), rsp.CompressFeatureMap, table),
    )


def parse_response_get_result(buf: Buffer) -> ResponseGetResultView:
    """Parses a /getResult response FlatBuffer.

    Raises:
        ProtocolError: "The schema of ResponseGetResult is invalid."
    """
    table = "ResponseGetResult"
    verify(buf, table)
    rsp = ResponseGetResult.GetRootAs(buf, 0)
    return ResponseGetResultView(
        retcode=rsp.Retcode(),
        reason=text(rsp.Reason(), table),
        iteration=rsp.Iteration(),
        timestamp=text(rsp.Timestamp(), table),
    )


def parse_response_push_metrics(buf: Buffer) -> int:
    """Parses a /pushMetrics response FlatBuffer.

    Returns:
        The retcode.

    Raises:
        ProtocolError: "The schema of ResponsePushMetrics is invalid."
    """
    verify(buf, "ResponsePushMetrics")
    return int(ResponsePushMetrics.GetRootAs(buf, 0).Retcode())
