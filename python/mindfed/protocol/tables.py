"""A codec for the small tables of cipher.fbs, driven by `layout.TABLES` (one description of the wire, not two).

The tensor-carrying messages of fl_job.fbs have hand-written builders and zero-copy parsers (they carry megabytes);
the secure-aggregation messages carry keys, shares and id lists only, so one generic encoder and decoder cover the
fourteen of them, both sides, and cannot drift from the schema the verifier checks.

Values are plain Python: `int`/`float`/`bool` scalars, `str` strings, `bytes` for [ubyte], `list[str]` for
[string], a dict for a nested table and a list of dicts for a vector of tables. A field absent from the dict is
absent from the buffer; `decode` gives absent strings as "", absent vectors as empty and absent scalars as 0, and
lists which fields were present under the key `"_present"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flatbuffers
from flatbuffers import encode as fb_encode
from flatbuffers import number_types as N
from flatbuffers.table import Table

from mindfed.errors import ProtocolError
from mindfed.protocol.layout import TABLES, Kind
from mindfed.protocol.plain_text import schema_invalid_text
from mindfed.protocol.verifier import verify
from mindfed.protocol.writer import finish, offset_vector

_SCALAR_FLAGS = {"bool": N.BoolFlags, "byte": N.Int8Flags, "int8": N.Int8Flags, "ubyte": N.Uint8Flags,
                 "uint8": N.Uint8Flags, "short": N.Int16Flags, "ushort": N.Uint16Flags, "int": N.Int32Flags,
                 "uint": N.Uint32Flags, "float": N.Float32Flags, "long": N.Int64Flags, "ulong": N.Uint64Flags,
                 "double": N.Float64Flags}
_PREPEND_SLOT = {"bool": "PrependBoolSlot", "byte": "PrependInt8Slot", "int8": "PrependInt8Slot",
                 "ubyte": "PrependUint8Slot", "uint8": "PrependUint8Slot", "short": "PrependInt16Slot",
                 "ushort": "PrependUint16Slot", "int": "PrependInt32Slot", "uint": "PrependUint32Slot",
                 "float": "PrependFloat32Slot", "long": "PrependInt64Slot", "ulong": "PrependUint64Slot",
                 "double": "PrependFloat64Slot"}
PRESENT = "_present"


def encode(table: str, values: Mapping[str, Any]) -> bytes:
    """The FlatBuffer of root `table` holding `values` (field name -> value)."""
    builder = flatbuffers.Builder(1024)
    return finish(builder, _build(builder, table, values))


def _build(builder: flatbuffers.Builder, table: str, values: Mapping[str, Any]) -> int:
    fields = TABLES[table]
    unknown = set(values) - {f.name for f in fields}
    if unknown:
        raise KeyError(f"{table} has no field {sorted(unknown)}")
    offsets: dict[str, int] = {}
    for field in fields:  # children first: FlatBuffers cannot nest an object inside one being built
        if field.name not in values or field.kind == Kind.SCALAR:
            continue
        value = values[field.name]
        if field.kind == Kind.STRING:
            offsets[field.name] = builder.CreateString(value)
        elif field.kind == Kind.SCALAR_VECTOR:
            if field.elem not in ("ubyte", "uint8", "byte", "int8"):
                raise TypeError(f"{table}.{field.name}: only byte vectors are encoded here")
            offsets[field.name] = builder.CreateByteVector(bytes(value))
        elif field.kind == Kind.STRING_VECTOR:
            offsets[field.name] = offset_vector(builder, [builder.CreateString(s) for s in value])
        elif field.kind == Kind.TABLE:
            assert field.elem is not None
            offsets[field.name] = _build(builder, field.elem, value)
        else:
            assert field.elem is not None
            offsets[field.name] = offset_vector(builder, [_build(builder, field.elem, v) for v in value])
    builder.StartObject(len(fields))
    for slot, field in enumerate(fields):
        if field.name not in values:
            continue
        if field.kind == Kind.SCALAR:
            assert field.elem is not None
            getattr(builder, _PREPEND_SLOT[field.elem])(slot, values[field.name], None)  # None: always written
        else:
            builder.PrependUOffsetTRelativeSlot(slot, offsets[field.name], 0)
    return int(builder.EndObject())


def decode(table: str, buf: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Verifies `buf` as a `table` and reads every field.

    Raises:
        ProtocolError: MindSpore's "The schema of {table} is invalid." for malformed bytes or non-UTF-8 text.
    """
    verify(buf, table)
    data = bytes(buf)
    root = fb_encode.Get(N.UOffsetTFlags.packer_type, data, 0)
    return _read(Table(data, root), table)


def _read(tab: Table, table: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    present: set[str] = set()
    for slot, field in enumerate(TABLES[table]):
        o = tab.Offset(4 + 2 * slot)
        if o:
            present.add(field.name)
        if field.kind == Kind.SCALAR:
            assert field.elem is not None
            out[field.name] = tab.Get(_SCALAR_FLAGS[field.elem], o + tab.Pos) if o else 0
        elif field.kind == Kind.STRING:
            out[field.name] = _text(tab.String(o + tab.Pos), table) if o else ""
        elif field.kind == Kind.SCALAR_VECTOR:
            if not o:
                out[field.name] = b""
            else:
                start, length = tab.Vector(o), tab.VectorLen(o)
                out[field.name] = bytes(tab.Bytes[start:start + length])
        elif field.kind == Kind.STRING_VECTOR:
            out[field.name] = [_text(tab.String(tab.Vector(o) + 4 * j), table)
                               for j in range(tab.VectorLen(o))] if o else []
        elif field.kind == Kind.TABLE:
            assert field.elem is not None
            out[field.name] = _read(Table(tab.Bytes, tab.Indirect(o + tab.Pos)), field.elem) if o else None
        else:
            assert field.elem is not None
            out[field.name] = [_read(Table(tab.Bytes, tab.Indirect(tab.Vector(o) + 4 * j)), field.elem)
                               for j in range(tab.VectorLen(o))] if o else []
    out[PRESENT] = present
    return out


def _text(raw: bytes, table: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(schema_invalid_text(table)) from exc
