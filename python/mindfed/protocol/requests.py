"""Server-side parsers of device requests: verify, then read through the generated code.

Each parser raises ProtocolError("The schema of {Table} is invalid.") for bytes that
fail verification (or carry non-UTF-8 text), which is exactly the `reason` MindSpore
answers with; anything that passes yields a frozen view (see `views`).
"""

from __future__ import annotations

from mindfed.protocol import reader
from mindfed.protocol.generated.RequestFLJob import RequestFLJob
from mindfed.protocol.generated.RequestGetModel import RequestGetModel
from mindfed.protocol.generated.RequestGetResult import RequestGetResult
from mindfed.protocol.generated.RequestPushMetrics import RequestPushMetrics
from mindfed.protocol.generated.RequestUpdateModel import RequestUpdateModel
from mindfed.protocol.reader import Buffer, text
from mindfed.protocol.verifier import verify
from mindfed.protocol.views import (
    NamedTensor,
    RequestFLJobView,
    RequestGetModelView,
    RequestGetResultView,
    RequestPushMetricsView,
    RequestUpdateModelView,
)


def parse_request_fl_job(buf: Buffer) -> RequestFLJobView:
    """Parses a /startFLJob body.

    Args:
        buf: The raw request body.

    Returns:
        The request's fields, with presence flags for fl_name, fl_id, timestamp and
        the pki fields.

    Raises:
        ProtocolError: "The schema of RequestFLJob is invalid."
    """
    table = "RequestFLJob"
    verify(buf, table)
    req = RequestFLJob.GetRootAs(buf, 0)
    fl_name, fl_id, timestamp = req.FlName(), req.FlId(), req.Timestamp()
    key_attestation, equip_cert, equip_ca_cert = req.KeyAttestation(), req.EquipCert(), req.EquipCaCert()
    return RequestFLJobView(
        fl_name=text(fl_name, table),
        fl_id=text(fl_id, table),
        iteration=req.Iteration(),
        data_size=req.DataSize(),
        timestamp=text(timestamp, table),
        download_compress_types=reader.byte_list(req, "DownloadCompressTypes"),
        eval_data_size=req.EvalDataSize(),
        sign_data=reader.raw_bytes(req, "SignData"),
        key_attestation=text(key_attestation, table),
        equip_cert=text(equip_cert, table),
        equip_ca_cert=text(equip_ca_cert, table),
        root_cert=text(req.RootCert(), table),
        has_fl_name=fl_name is not None,
        has_fl_id=fl_id is not None,
        has_timestamp=timestamp is not None,
        has_sign_data=not req.SignDataIsNone(),
        has_key_attestation=key_attestation is not None,
        has_equip_cert=equip_cert is not None,
        has_equip_ca_cert=equip_ca_cert is not None,
    )


def parse_request_update_model(buf: Buffer) -> RequestUpdateModelView:
    """Parses an /updateModel body; tensors are zero-copy views into `buf`.

    Args:
        buf: The raw request body (keep it alive while the view is used).

    Returns:
        The request's fields. Entries of `feature_map` and `compress_feature_map`
        say whether their name and data were present (`complete`).

    Raises:
        ProtocolError: "The schema of RequestUpdateModel is invalid."
    """
    table = "RequestUpdateModel"
    verify(buf, table)
    req = RequestUpdateModel.GetRootAs(buf, 0)
    fl_name, fl_id, timestamp = req.FlName(), req.FlId(), req.Timestamp()
    items_table = req.UnsupervisedEvalItems()
    items: tuple[NamedTensor, ...] = ()
    if items_table is not None:
        items = reader.eval_items(items_table.EvalItemsLength(), items_table.EvalItems, table)
    return RequestUpdateModelView(
        fl_name=text(fl_name, table),
        fl_id=text(fl_id, table),
        iteration=req.Iteration(),
        timestamp=text(timestamp, table),
        feature_map=reader.feature_map(req, table),
        signature=reader.raw_bytes(req, "Signature"),
        upload_loss=req.UploadLoss(),
        upload_accuracy=req.UploadAccuracy(),
        sign=req.Sign(),
        index_array=reader.int32_view(req, "IndexArray"),
        compress_feature_map=reader.compressed_tensors(
            req.CompressFeatureMapLength(), req.CompressFeatureMap, table
        ),
        upload_compress_type=req.UploadCompressType(),
        upload_sparse_rate=req.UploadSparseRate(),
        name_vec=reader.string_list(req.NameVecLength(), req.NameVec, table),
        unsupervised_eval_items=items,
        signds_b_hat=text(req.SigndsBHat(), table),
        has_fl_name=fl_name is not None,
        has_fl_id=fl_id is not None,
        has_timestamp=timestamp is not None,
        has_feature_map=not req.FeatureMapIsNone(),
        has_compress_feature_map=not req.CompressFeatureMapIsNone(),
        has_index_array=not req.IndexArrayIsNone(),
        has_unsupervised_eval_items=items_table is not None,
    )


def parse_request_get_model(buf: Buffer) -> RequestGetModelView:
    """Parses a /getModel body.

    Raises:
        ProtocolError: "The schema of RequestGetModel is invalid."
    """
    table = "RequestGetModel"
    verify(buf, table)
    req = RequestGetModel.GetRootAs(buf, 0)
    return RequestGetModelView(
        fl_name=text(req.FlName(), table),
        iteration=req.Iteration(),
        timestamp=text(req.Timestamp(), table),
        download_compress_types=reader.byte_list(req, "DownloadCompressTypes"),
    )


def parse_request_get_result(buf: Buffer) -> RequestGetResultView:
    """Parses a /getResult body.

    Raises:
        ProtocolError: "The schema of RequestGetResult is invalid."
    """
    table = "RequestGetResult"
    verify(buf, table)
    req = RequestGetResult.GetRootAs(buf, 0)
    return RequestGetResultView(
        fl_name=text(req.FlName(), table), iteration=req.Iteration(), timestamp=text(req.Timestamp(), table)
    )


def parse_request_push_metrics(buf: Buffer) -> RequestPushMetricsView:
    """Parses a /pushMetrics body.

    Raises:
        ProtocolError: "The schema of RequestPushMetrics is invalid."
    """
    verify(buf, "RequestPushMetrics")
    req = RequestPushMetrics.GetRootAs(buf, 0)
    return RequestPushMetricsView(loss=req.Loss(), accuracy=req.Accuracy())
