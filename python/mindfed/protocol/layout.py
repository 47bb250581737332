"""The wire schema (fl_job.fbs + cipher.fbs) described as data, for the verifier.

The Python flatbuffers runtime has no verifier, so `protocol.verifier` walks buffers
with this description instead. Field order is the vtable slot order (slot i lives at
vtable offset 4 + 2*i). Enums appear as their underlying scalar type, because the
wire carries only that. tests/unit/protocol/test_layout.py parses the .fbs files and
compares them with this table, so the two cannot drift apart.
"""

from __future__ import annotations

import enum
import functools
from typing import NamedTuple


class Kind(enum.Enum):
    """How a field is stored, which decides how the verifier checks it."""

    SCALAR = "scalar"  # inline in the table
    STRING = "string"  # uoffset to uint32 length, bytes, NUL
    SCALAR_VECTOR = "scalar_vector"  # uoffset to uint32 count, count * elem size bytes
    STRING_VECTOR = "string_vector"  # uoffset to a vector of uoffsets to strings
    TABLE_VECTOR = "table_vector"  # uoffset to a vector of uoffsets to tables
    TABLE = "table"  # uoffset to a nested table


class Field(NamedTuple):
    """One schema field.

    Attributes:
        name: The field name as written in the .fbs file.
        kind: How the field is stored.
        elem: Scalar type name (SCALAR, SCALAR_VECTOR) or table name (TABLE,
            TABLE_VECTOR); None for strings.
    """

    name: str
    kind: Kind
    elem: str | None


SCALAR_SIZES: dict[str, int] = {
    "bool": 1,
    "byte": 1,
    "int8": 1,
    "ubyte": 1,
    "uint8": 1,
    "short": 2,
    "ushort": 2,
    "int": 4,
    "uint": 4,
    "float": 4,
    "long": 8,
    "ulong": 8,
    "double": 8,
}
"""Byte size (and, as in C++, required alignment) of each scalar type name."""

TABLES: dict[str, tuple[Field, ...]] = {
    "Aggregation": (
        Field("type", Kind.SCALAR, "byte"),
        Field("weights", Kind.SCALAR_VECTOR, "float"),
        Field("iid_rate", Kind.SCALAR, "float"),
        Field("total_client_num", Kind.SCALAR, "int"),
    ),
    "EarlyStop": (
        Field("early_stop_type", Kind.SCALAR, "byte"),
        Field("weight", Kind.SCALAR, "float"),
        Field("rounds", Kind.SCALAR, "int"),
    ),
    "FeatureMap": (
        Field("weight_fullname", Kind.STRING, None),
        Field("data", Kind.SCALAR_VECTOR, "float"),
    ),
    "UnsupervisedEvalItem": (
        Field("eval_name", Kind.STRING, None),
        Field("eval_data", Kind.SCALAR_VECTOR, "float"),
    ),
    "UnsupervisedEvalItems": (
        Field("eval_items", Kind.TABLE_VECTOR, "UnsupervisedEvalItem"),
    ),
    "CompressFeatureMap": (
        Field("weight_fullname", Kind.STRING, None),
        Field("compress_data", Kind.SCALAR_VECTOR, "int8"),
        Field("min_val", Kind.SCALAR, "float"),
        Field("max_val", Kind.SCALAR, "float"),
    ),
    "RequestFLJob": (
        Field("fl_name", Kind.STRING, None),
        Field("fl_id", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("data_size", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("sign_data", Kind.SCALAR_VECTOR, "ubyte"),
        Field("key_attestation", Kind.STRING, None),
        Field("equip_cert", Kind.STRING, None),
        Field("equip_ca_cert", Kind.STRING, None),
        Field("root_cert", Kind.STRING, None),
        Field("download_compress_types", Kind.SCALAR_VECTOR, "byte"),
        Field("eval_data_size", Kind.SCALAR, "int"),
    ),
    "ResponseFLJob": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("is_selected", Kind.SCALAR, "bool"),
        Field("next_req_time", Kind.STRING, None),
        Field("fl_plan_config", Kind.TABLE, "FLPlan"),
        Field("feature_map", Kind.TABLE_VECTOR, "FeatureMap"),
        Field("timestamp", Kind.STRING, None),
        Field("upload_compress_type", Kind.SCALAR, "byte"),
        Field("upload_sparse_rate", Kind.SCALAR, "float"),
        Field("download_compress_type", Kind.SCALAR, "byte"),
        Field("compress_feature_map", Kind.TABLE_VECTOR, "CompressFeatureMap"),
        Field("unsupervised_eval_flg", Kind.STRING, None),
        Field("upload_quant_bound", Kind.SCALAR, "float"),  # mindfed-only (secure compressed upload)
    ),
    "FLPlan": (
        Field("server_mode", Kind.STRING, None),
        Field("fl_name", Kind.STRING, None),
        Field("iterations", Kind.SCALAR, "int"),
        Field("epochs", Kind.SCALAR, "int"),
        Field("early_stop", Kind.TABLE, "EarlyStop"),
        Field("mini_batch", Kind.SCALAR, "int"),
        Field("shuffle", Kind.SCALAR, "bool"),
        Field("lr", Kind.SCALAR, "float"),
        Field("aggregation", Kind.TABLE, "Aggregation"),
        Field("metrics", Kind.SCALAR_VECTOR, "byte"),
        Field("cipher", Kind.TABLE, "CipherPublicParams"),
    ),
    "RequestUpdateModel": (
        Field("fl_name", Kind.STRING, None),
        Field("fl_id", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("feature_map", Kind.TABLE_VECTOR, "FeatureMap"),
        Field("timestamp", Kind.STRING, None),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
        Field("upload_loss", Kind.SCALAR, "float"),
        Field("sign", Kind.SCALAR, "int"),
        Field("index_array", Kind.SCALAR_VECTOR, "int"),
        Field("compress_feature_map", Kind.TABLE_VECTOR, "CompressFeatureMap"),
        Field("upload_compress_type", Kind.SCALAR, "byte"),
        Field("upload_sparse_rate", Kind.SCALAR, "float"),
        Field("name_vec", Kind.STRING_VECTOR, None),
        Field("upload_accuracy", Kind.SCALAR, "float"),
        Field("unsupervised_eval_items", Kind.TABLE, "UnsupervisedEvalItems"),
        Field("signds_b_hat", Kind.STRING, None),
    ),
    "ResponseUpdateModel": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("feature_map", Kind.TABLE_VECTOR, "FeatureMap"),
        Field("next_req_time", Kind.STRING, None),
        Field("timestamp", Kind.STRING, None),
    ),
    "RequestAsyncUpdateModel": (
        Field("fl_name", Kind.STRING, None),
        Field("fl_id", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("data_size", Kind.SCALAR, "int"),
        Field("feature_map", Kind.TABLE_VECTOR, "FeatureMap"),
    ),
    "ResponseAsyncUpdateModel": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
    ),
    "RequestPushWeight": (
        Field("iteration", Kind.SCALAR, "int"),
        Field("feature_map", Kind.TABLE_VECTOR, "FeatureMap"),
    ),
    "ResponsePushWeight": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
    ),
    "RequestGetModel": (
        Field("fl_name", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("download_compress_types", Kind.SCALAR_VECTOR, "byte"),
    ),
    "ResponseGetModel": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("feature_map", Kind.TABLE_VECTOR, "FeatureMap"),
        Field("timestamp", Kind.STRING, None),
        Field("download_compress_type", Kind.SCALAR, "byte"),
        Field("compress_feature_map", Kind.TABLE_VECTOR, "CompressFeatureMap"),
    ),
    "RequestGetResult": (
        Field("fl_name", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
    ),
    "ResponseGetResult": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
    ),
    "RequestAsyncGetModel": (
        Field("fl_name", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
    ),
    "ResponseAsyncGetModel": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("feature_map", Kind.TABLE_VECTOR, "FeatureMap"),
    ),
    "RequestPullWeight": (
        Field("iteration", Kind.SCALAR, "int"),
        Field("weight_names", Kind.STRING_VECTOR, None),
    ),
    "ResponsePullWeight": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("feature_map", Kind.TABLE_VECTOR, "FeatureMap"),
    ),
    "FeatureMapList": (
        Field("feature_map", Kind.TABLE_VECTOR, "FeatureMap"),
    ),
    "RequestPushMetrics": (
        Field("loss", Kind.SCALAR, "float"),
        Field("accuracy", Kind.SCALAR, "float"),
    ),
    "ResponsePushMetrics": (
        Field("retcode", Kind.SCALAR, "int"),
    ),
    "PWParams": (
        Field("t", Kind.SCALAR, "int"),
        Field("p", Kind.SCALAR_VECTOR, "ubyte"),
        Field("g", Kind.SCALAR, "int"),
        Field("prime", Kind.SCALAR_VECTOR, "ubyte"),
    ),
    "DPParams": (
        Field("dp_eps", Kind.SCALAR, "float"),
        Field("dp_delta", Kind.SCALAR, "float"),
        Field("dp_norm_clip", Kind.SCALAR, "float"),
    ),
    "DSParams": (
        Field("sign_k", Kind.SCALAR, "float"),
        Field("sign_eps", Kind.SCALAR, "float"),
        Field("sign_thr_ratio", Kind.SCALAR, "float"),
        Field("sign_global_lr", Kind.SCALAR, "float"),
        Field("sign_dim_out", Kind.SCALAR, "int"),
        Field("signds_r_est", Kind.SCALAR, "float"),
        Field("signds_is_reached", Kind.SCALAR, "int"),
    ),
    "CipherPublicParams": (
        Field("encrypt_type", Kind.STRING, None),
        Field("pw_params", Kind.TABLE, "PWParams"),
        Field("dp_params", Kind.TABLE, "DPParams"),
        Field("ds_params", Kind.TABLE, "DSParams"),
        Field("laplace_params", Kind.SCALAR, "float"),
    ),
    "ClientPublicKeys": (
        Field("fl_id", Kind.STRING, None),
        Field("c_pk", Kind.SCALAR_VECTOR, "ubyte"),
        Field("s_pk", Kind.SCALAR_VECTOR, "ubyte"),
        Field("pw_iv", Kind.SCALAR_VECTOR, "ubyte"),
        Field("pw_salt", Kind.SCALAR_VECTOR, "ubyte"),
        Field("timestamp", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
        Field("certificate_chain", Kind.STRING_VECTOR, None),
    ),
    "ClientShare": (
        Field("fl_id", Kind.STRING, None),
        Field("share", Kind.SCALAR_VECTOR, "ubyte"),
        Field("index", Kind.SCALAR, "int"),
    ),
    "RequestExchangeKeys": (
        Field("fl_id", Kind.STRING, None),
        Field("c_pk", Kind.SCALAR_VECTOR, "ubyte"),
        Field("s_pk", Kind.SCALAR_VECTOR, "ubyte"),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("ind_iv", Kind.SCALAR_VECTOR, "ubyte"),
        Field("pw_iv", Kind.SCALAR_VECTOR, "ubyte"),
        Field("pw_salt", Kind.SCALAR_VECTOR, "ubyte"),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
        Field("certificate_chain", Kind.STRING_VECTOR, None),
    ),
    "ResponseExchangeKeys": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("next_req_time", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
    ),
    "GetExchangeKeys": (
        Field("fl_id", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
    ),
    "ReturnExchangeKeys": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("iteration", Kind.SCALAR, "int"),
        Field("remote_publickeys", Kind.TABLE_VECTOR, "ClientPublicKeys"),
        Field("next_req_time", Kind.STRING, None),
    ),
    "RequestShareSecrets": (
        Field("fl_id", Kind.STRING, None),
        Field("encrypted_shares", Kind.TABLE_VECTOR, "ClientShare"),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
    ),
    "ResponseShareSecrets": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("next_req_time", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
    ),
    "GetShareSecrets": (
        Field("fl_id", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
    ),
    "ReturnShareSecrets": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("iteration", Kind.SCALAR, "int"),
        Field("encrypted_shares", Kind.TABLE_VECTOR, "ClientShare"),
        Field("next_req_time", Kind.STRING, None),
    ),
    "GetClientList": (
        Field("fl_id", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
    ),
    "ReturnClientList": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("clients", Kind.STRING_VECTOR, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("next_req_time", Kind.STRING, None),
    ),
    "ClientListSign": (
        Field("fl_id", Kind.STRING, None),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
    ),
    "SendClientListSign": (
        Field("fl_id", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
        Field("req_signature", Kind.SCALAR_VECTOR, "ubyte"),
    ),
    "ResponseClientListSign": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("next_req_time", Kind.STRING, None),
    ),
    "RequestAllClientListSign": (
        Field("fl_id", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
    ),
    "ReturnAllClientListSign": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("client_list_sign", Kind.TABLE_VECTOR, "ClientListSign"),
        Field("iteration", Kind.SCALAR, "int"),
        Field("next_req_time", Kind.STRING, None),
    ),
    "SendReconstructSecret": (
        Field("fl_id", Kind.STRING, None),
        Field("reconstruct_secret_shares", Kind.TABLE_VECTOR, "ClientShare"),
        Field("iteration", Kind.SCALAR, "int"),
        Field("timestamp", Kind.STRING, None),
        Field("signature", Kind.SCALAR_VECTOR, "ubyte"),
    ),
    "ReconstructSecret": (
        Field("retcode", Kind.SCALAR, "int"),
        Field("reason", Kind.STRING, None),
        Field("iteration", Kind.SCALAR, "int"),
        Field("next_req_time", Kind.STRING, None),
    ),
}
"""Every table of fl_job.fbs and cipher.fbs, fields in declaration (slot) order."""


def vtable_offset(index: int) -> int:
    """The byte offset inside a vtable of the entry of field `index` (slot order): after the vtable's own size and the
    table's inline size, two bytes per field."""
    return 4 + 2 * index


@functools.cache
def field_slot(table: str, field: str) -> int:
    """`vtable_offset` of `field` in `table`, by name."""
    return vtable_offset([f.name for f in TABLES[table]].index(field))
