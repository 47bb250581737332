"""Shared read helpers for the parsers: text decoding and tensor vectors as views.

They are only called on buffers that passed `verifier.verify`, so the generated
accessors cannot read out of bounds; what is left to check is text encoding.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from mindfed.errors import ProtocolError
from mindfed.protocol.layout import field_slot
from mindfed.protocol.plain_text import schema_invalid_text
from mindfed.protocol.views import CompressedTensor, NamedTensor

Buffer = bytes | bytearray | memoryview

_EMPTY_F32 = np.zeros(0, dtype="<f4")
_EMPTY_I8 = np.zeros(0, dtype=np.int8)
_EMPTY_I32 = np.zeros(0, dtype="<i4")
for _empty in (_EMPTY_F32, _EMPTY_I8, _EMPTY_I32):
    _empty.flags.writeable = False


def text(raw: bytes | None, table: str) -> str:
    """Decodes a FlatBuffers string; absent reads as "".

    Args:
        raw: What the generated accessor returned (bytes, or None if absent).
        table: Root table name, for the error message.

    Raises:
        ProtocolError: The bytes are not UTF-8 (they could not be used as keys or
            logged safely; MindSpore would treat them as opaque bytes).
    """
    if raw is None:
        return ""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(schema_invalid_text(table)) from exc


def float_view(table_obj: Any, accessor: str) -> np.ndarray:
    """Returns the float32 vector `accessor` of a generated object as a view (empty if absent)."""
    if getattr(table_obj, accessor + "IsNone")():
        return _EMPTY_F32
    return getattr(table_obj, accessor + "AsNumpy")()  # type: ignore[no-any-return]


def int8_view(table_obj: Any, accessor: str) -> np.ndarray:
    """Returns the int8 vector `accessor` of a generated object as a view (empty if absent)."""
    if getattr(table_obj, accessor + "IsNone")():
        return _EMPTY_I8
    return getattr(table_obj, accessor + "AsNumpy")()  # type: ignore[no-any-return]


def int32_view(table_obj: Any, accessor: str) -> np.ndarray:
    """Returns the int32 vector `accessor` of a generated object as a view (empty if absent)."""
    if getattr(table_obj, accessor + "IsNone")():
        return _EMPTY_I32
    return getattr(table_obj, accessor + "AsNumpy")()  # type: ignore[no-any-return]


def byte_list(table_obj: Any, accessor: str) -> tuple[int, ...]:
    """Returns a small byte/enum vector (e.g. download_compress_types) as a tuple of ints."""
    if getattr(table_obj, accessor + "IsNone")():
        return ()
    return tuple(int(v) for v in getattr(table_obj, accessor + "AsNumpy")())


def raw_bytes(table_obj: Any, accessor: str) -> bytes:
    """Returns a [ubyte] vector (signatures, certificates) as bytes (empty if absent)."""
    if getattr(table_obj, accessor + "IsNone")():
        return b""
    return bytes(getattr(table_obj, accessor + "AsNumpy")())


_U16, _U32, _I32 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<i")
_FM_NAME, _FM_DATA = field_slot("FeatureMap", "weight_fullname"), field_slot("FeatureMap", "data")


def feature_map(root: Any, table: str) -> tuple[NamedTensor, ...]:
    """The `feature_map` [FeatureMap] of a generated root object of `table`, read straight off its (verified) buffer,
    at the vtable slots the schema's description gives (layout.field_slot).

    What the generated accessors would read, at a cost per tensor of a new object, an import and
    half a dozen vtable lookups (a profile of LeNet rounds: 5 % of the server's samples in reading update tensors).
    """
    tab = root._tab
    field = tab.Offset(field_slot(table, "feature_map"))
    if not field:
        return ()
    buf, vector, count = tab.Bytes, tab.Vector(field), tab.VectorLen(field)
    out = []
    for j in range(count):
        entry = vector + 4 * j
        pos = entry + _U32.unpack_from(buf, entry)[0]  # the FeatureMap table
        vtable = pos - _I32.unpack_from(buf, pos)[0]
        vtable_len = _U16.unpack_from(buf, vtable)[0]
        name_at = _U16.unpack_from(buf, vtable + _FM_NAME)[0] if vtable_len > _FM_NAME else 0
        data_at = _U16.unpack_from(buf, vtable + _FM_DATA)[0] if vtable_len > _FM_DATA else 0
        raw_name = None
        if name_at:
            start = pos + name_at + _U32.unpack_from(buf, pos + name_at)[0]
            raw_name = bytes(buf[start + 4 : start + 4 + _U32.unpack_from(buf, start)[0]])
        data = _EMPTY_F32
        if data_at:
            start = pos + data_at + _U32.unpack_from(buf, pos + data_at)[0]
            data = np.frombuffer(buf, "<f4", _U32.unpack_from(buf, start)[0], start + 4)
        out.append(NamedTensor(text(raw_name, table), data, raw_name is not None, data_at != 0))
    return tuple(out)


def eval_items(count: int, get: Callable[[int], Any], table: str) -> tuple[NamedTensor, ...]:
    """Reads `count` UnsupervisedEvalItem tables through the generated getter `get(j)`."""
    out = []
    for j in range(count):
        item = get(j)
        raw_name = item.EvalName()
        has_data = not item.EvalDataIsNone()
        out.append(NamedTensor(text(raw_name, table), float_view(item, "EvalData"), raw_name is not None, has_data))
    return tuple(out)


def compressed_tensors(count: int, get: Callable[[int], Any], table: str) -> tuple[CompressedTensor, ...]:
    """Reads `count` CompressFeatureMap tables through the generated getter `get(j)`."""
    out = []
    for j in range(count):
        cfm = get(j)
        raw_name = cfm.WeightFullname()
        out.append(
            CompressedTensor(
                text(raw_name, table),
                int8_view(cfm, "CompressData"),
                float(cfm.MinVal()),
                float(cfm.MaxVal()),
                raw_name is not None,
                not cfm.CompressDataIsNone(),
            )
        )
    return tuple(out)


def string_list(count: int, get: Callable[[int], bytes], table: str) -> tuple[str, ...]:
    """Reads a [string] vector of `count` entries through the generated getter `get(j)`."""
    return tuple(text(get(j), table) for j in range(count))
