"""Device-side builders of the requests (used by the device SDK, simulators and tests).

`omit` drops fields by their .fbs name so tests can send requests a server must reject
(e.g. a RequestFLJob without `fl_id`); "feature_map.weight_fullname" and
"feature_map.data" drop that member from every FeatureMap entry.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import flatbuffers
import numpy.typing as npt

from mindfed.protocol.generated import FeatureMap as FmGen
from mindfed.protocol.generated import RequestFLJob as RfjGen
from mindfed.protocol.generated import RequestGetModel as RgmGen
from mindfed.protocol.generated import RequestGetResult as RgrGen
from mindfed.protocol.generated import RequestPushMetrics as RpmGen
from mindfed.protocol.generated import RequestUpdateModel as RumGen
from mindfed.protocol.generated import UnsupervisedEvalItem as UeiGen
from mindfed.protocol.generated import UnsupervisedEvalItems as UeisGen
from mindfed.protocol.layout import TABLES
from mindfed.protocol.writer import (
    CompressedWeights,
    Weights,
    compress_feature_maps,
    finish,
    new_builder,
    numpy_vector,
    offset_vector,
    payload_size,
    string_vector,
)

_ENTRY_OMITS = frozenset({"feature_map.weight_fullname", "feature_map.data"})


def _check_omit(table: str, omit: Collection[str]) -> None:
    known = {field.name for field in TABLES[table]} | _ENTRY_OMITS
    unknown = set(omit) - known
    if unknown:
        raise ValueError(f"{table} has no field(s) {sorted(unknown)} to omit")


def _string(builder: flatbuffers.Builder, value: str | None, name: str, omit: Collection[str]) -> int | None:
    return None if value is None or name in omit else builder.CreateString(value)


def _feature_maps(builder: flatbuffers.Builder, weights: Weights, omit: Collection[str]) -> int:
    offsets = []
    for name, data in weights:
        name_off = None if "feature_map.weight_fullname" in omit else builder.CreateString(name)
        data_off = None if "feature_map.data" in omit else numpy_vector(builder, data, "<f4")
        FmGen.FeatureMapStart(builder)
        if name_off is not None:
            FmGen.FeatureMapAddWeightFullname(builder, name_off)
        if data_off is not None:
            FmGen.FeatureMapAddData(builder, data_off)
        offsets.append(FmGen.FeatureMapEnd(builder))
    return offset_vector(builder, offsets)


def _eval_items(builder: flatbuffers.Builder, items: Sequence[tuple[str, npt.ArrayLike]]) -> int:
    offsets = []
    for name, data in items:
        name_off = builder.CreateString(name)
        data_off = numpy_vector(builder, data, "<f4")
        UeiGen.UnsupervisedEvalItemStart(builder)
        UeiGen.UnsupervisedEvalItemAddEvalName(builder, name_off)
        UeiGen.UnsupervisedEvalItemAddEvalData(builder, data_off)
        offsets.append(UeiGen.UnsupervisedEvalItemEnd(builder))
    vector = offset_vector(builder, offsets)
    UeisGen.UnsupervisedEvalItemsStart(builder)
    UeisGen.UnsupervisedEvalItemsAddEvalItems(builder, vector)
    return int(UeisGen.UnsupervisedEvalItemsEnd(builder))


def build_request_fl_job(
    fl_name: str,
    fl_id: str,
    iteration: int,
    data_size: int,
    timestamp: str,
    download_compress_types: Sequence[int] = (0, 2),
    eval_data_size: int = 0,
    omit: Collection[str] = frozenset(),
    *,
    sign_data: bytes | None = None,
    key_attestation: str | None = None,
    equip_cert: str | None = None,
    equip_ca_cert: str | None = None,
    root_cert: str | None = None,
) -> bytes:
    """Builds a RequestFLJob as a device sends it.

    Args:
        fl_name: The job name.
        fl_id: The device id.
        iteration: The last iteration the device knows (the server ignores it).
        data_size: Number of local training samples.
        timestamp: Decimal ms-since-epoch string.
        download_compress_types: CompressType values the device accepts (Java: 0, 2).
        eval_data_size: Number of local evaluation samples.
        omit: Field names to leave out.
        sign_data, key_attestation, equip_cert, equip_ca_cert, root_cert: pki_verify
            fields; None leaves them out.

    Returns:
        The FlatBuffer bytes.

    Raises:
        ValueError: `omit` names a field RequestFLJob does not have.
    """
    _check_omit("RequestFLJob", omit)
    builder = new_builder(0)
    name_off = _string(builder, fl_name, "fl_name", omit)
    id_off = _string(builder, fl_id, "fl_id", omit)
    ts_off = _string(builder, timestamp, "timestamp", omit)
    sign_off = None if sign_data is None or "sign_data" in omit else builder.CreateByteVector(sign_data)
    pki = [
        _string(builder, value, name, omit)
        for value, name in (
            (key_attestation, "key_attestation"),
            (equip_cert, "equip_cert"),
            (equip_ca_cert, "equip_ca_cert"),
            (root_cert, "root_cert"),
        )
    ]
    types_off = None
    if "download_compress_types" not in omit:
        types_off = numpy_vector(builder, list(download_compress_types), "i1")
    RfjGen.RequestFLJobStart(builder)
    adders = (
        (name_off, RfjGen.RequestFLJobAddFlName),
        (id_off, RfjGen.RequestFLJobAddFlId),
        (ts_off, RfjGen.RequestFLJobAddTimestamp),
        (sign_off, RfjGen.RequestFLJobAddSignData),
        (pki[0], RfjGen.RequestFLJobAddKeyAttestation),
        (pki[1], RfjGen.RequestFLJobAddEquipCert),
        (pki[2], RfjGen.RequestFLJobAddEquipCaCert),
        (pki[3], RfjGen.RequestFLJobAddRootCert),
        (types_off, RfjGen.RequestFLJobAddDownloadCompressTypes),
    )
    for off, add in adders:
        if off is not None:
            add(builder, off)
    if "iteration" not in omit:
        RfjGen.RequestFLJobAddIteration(builder, iteration)
    if "data_size" not in omit:
        RfjGen.RequestFLJobAddDataSize(builder, data_size)
    if "eval_data_size" not in omit:
        RfjGen.RequestFLJobAddEvalDataSize(builder, eval_data_size)
    return finish(builder, RfjGen.RequestFLJobEnd(builder))


def build_request_update_model(
    fl_name: str,
    fl_id: str,
    iteration: int,
    feature_map: Weights | None,
    timestamp: str,
    upload_loss: float = 0.0,
    upload_accuracy: float = 0.0,
    compress_feature_map: CompressedWeights | None = None,
    upload_compress_type: int = 0,
    upload_sparse_rate: float = 0.0,
    name_vec: Sequence[str] = (),
    unsupervised_eval_items: Sequence[tuple[str, npt.ArrayLike]] = (),
    omit: Collection[str] = frozenset(),
    *,
    sign: int = 0,
    index_array: npt.ArrayLike | None = None,
    signature: bytes | None = None,
    signds_b_hat: str | None = None,
) -> bytes:
    """Builds a RequestUpdateModel as a device sends it.

    Args:
        fl_name: The job name.
        fl_id: The device id.
        iteration: The iteration this update belongs to.
        feature_map: (name, weights × data_size) pairs, float32 on the wire; None omits.
        timestamp: Decimal ms-since-epoch string.
        upload_loss: Mean local training loss.
        upload_accuracy: Local evaluation accuracy.
        compress_feature_map: (name, int8 codes, min, max) for DIFF_SPARSE_QUANT.
        upload_compress_type: CompressType of the upload.
        upload_sparse_rate: Sparsity used for DIFF_SPARSE_QUANT.
        name_vec: Tensor names in mask order (compressed uploads); empty omits.
        unsupervised_eval_items: (name, float values); empty omits the table.
        omit: Field names to leave out (see module docstring).
        sign, index_array, signds_b_hat: SignDS fields.
        signature: pki_verify signature over timestamp and iteration.

    Returns:
        The FlatBuffer bytes.

    Raises:
        ValueError: `omit` names a field RequestUpdateModel does not have.
    """
    _check_omit("RequestUpdateModel", omit)
    builder = new_builder(payload_size(feature_map, compress_feature_map))
    name_off = _string(builder, fl_name, "fl_name", omit)
    id_off = _string(builder, fl_id, "fl_id", omit)
    ts_off = _string(builder, timestamp, "timestamp", omit)
    b_hat_off = _string(builder, signds_b_hat, "signds_b_hat", omit)
    fm_off = None
    if feature_map is not None and "feature_map" not in omit:
        fm_off = _feature_maps(builder, feature_map, omit)
    cfm_off = None
    if compress_feature_map is not None and "compress_feature_map" not in omit:
        cfm_off = compress_feature_maps(builder, compress_feature_map)
    names_off = string_vector(builder, name_vec) if name_vec and "name_vec" not in omit else None
    index_off = None
    if index_array is not None and "index_array" not in omit:
        index_off = numpy_vector(builder, index_array, "<i4")
    sig_off = None if signature is None or "signature" in omit else builder.CreateByteVector(signature)
    items_off = None
    if unsupervised_eval_items and "unsupervised_eval_items" not in omit:
        items_off = _eval_items(builder, unsupervised_eval_items)
    RumGen.RequestUpdateModelStart(builder)
    for off, add in (
        (name_off, RumGen.RequestUpdateModelAddFlName),
        (id_off, RumGen.RequestUpdateModelAddFlId),
        (fm_off, RumGen.RequestUpdateModelAddFeatureMap),
        (ts_off, RumGen.RequestUpdateModelAddTimestamp),
        (sig_off, RumGen.RequestUpdateModelAddSignature),
        (index_off, RumGen.RequestUpdateModelAddIndexArray),
        (cfm_off, RumGen.RequestUpdateModelAddCompressFeatureMap),
        (names_off, RumGen.RequestUpdateModelAddNameVec),
        (items_off, RumGen.RequestUpdateModelAddUnsupervisedEvalItems),
        (b_hat_off, RumGen.RequestUpdateModelAddSigndsBHat),
    ):
        if off is not None:
            add(builder, off)
    for value, name, add_scalar in (
        (iteration, "iteration", RumGen.RequestUpdateModelAddIteration),
        (upload_loss, "upload_loss", RumGen.RequestUpdateModelAddUploadLoss),
        (sign, "sign", RumGen.RequestUpdateModelAddSign),
        (int(upload_compress_type), "upload_compress_type", RumGen.RequestUpdateModelAddUploadCompressType),
        (upload_sparse_rate, "upload_sparse_rate", RumGen.RequestUpdateModelAddUploadSparseRate),
        (upload_accuracy, "upload_accuracy", RumGen.RequestUpdateModelAddUploadAccuracy),
    ):
        if name not in omit:
            add_scalar(builder, value)
    return finish(builder, RumGen.RequestUpdateModelEnd(builder))


def build_request_get_model(
    fl_name: str, iteration: int, timestamp: str, download_compress_types: Sequence[int] = (0, 2)
) -> bytes:
    """Builds a RequestGetModel.

    Returns:
        The FlatBuffer bytes.
    """
    builder = new_builder(0)
    name_off = builder.CreateString(fl_name)
    ts_off = builder.CreateString(timestamp)
    types_off = numpy_vector(builder, list(download_compress_types), "i1")
    RgmGen.RequestGetModelStart(builder)
    RgmGen.RequestGetModelAddFlName(builder, name_off)
    RgmGen.RequestGetModelAddIteration(builder, iteration)
    RgmGen.RequestGetModelAddTimestamp(builder, ts_off)
    RgmGen.RequestGetModelAddDownloadCompressTypes(builder, types_off)
    return finish(builder, RgmGen.RequestGetModelEnd(builder))


def build_request_get_result(fl_name: str, iteration: int, timestamp: str) -> bytes:
    """Builds a RequestGetResult.

    Returns:
        The FlatBuffer bytes.
    """
    builder = new_builder(0)
    name_off = builder.CreateString(fl_name)
    ts_off = builder.CreateString(timestamp)
    RgrGen.RequestGetResultStart(builder)
    RgrGen.RequestGetResultAddFlName(builder, name_off)
    RgrGen.RequestGetResultAddIteration(builder, iteration)
    RgrGen.RequestGetResultAddTimestamp(builder, ts_off)
    return finish(builder, RgrGen.RequestGetResultEnd(builder))


def build_request_push_metrics(loss: float, accuracy: float) -> bytes:
    """Builds a RequestPushMetrics (hybrid worker).

    Returns:
        The FlatBuffer bytes.
    """
    builder = new_builder(0)
    RpmGen.RequestPushMetricsStart(builder)
    RpmGen.RequestPushMetricsAddLoss(builder, loss)
    RpmGen.RequestPushMetricsAddAccuracy(builder, accuracy)
    return finish(builder, RpmGen.RequestPushMetricsEnd(builder))
