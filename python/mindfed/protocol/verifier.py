"""A schema-driven FlatBuffers verifier, equivalent to C++ `flatbuffers::Verifier`.

The Python flatbuffers runtime trusts every offset it reads, so hostile bytes can make
the generated accessors raise IndexError/struct.error or return garbage. Every buffer
from a peer goes through `verify()` first; after it passes, the generated accessors of
the fields named in `layout.TABLES` only ever read inside the buffer.

The checks mirror `VerifyBuffer<T>(nullptr)` of flatbuffers 2.x (no file identifier,
as MindSpore): offsets in bounds, non-zero and below 2 GiB, scalars and uoffsets
aligned to their size relative to the buffer start, vtables 2-byte aligned with an
even size that fits, strings NUL-terminated, vector byte sizes that cannot overflow,
at most 64 nested tables and 1,000,000 tables in total. One check is added: a table's
inline size (vtable word 1) must fit in the buffer. Fields unknown to the schema
(extra vtable slots written by a newer peer) are allowed and skipped, as in C++.

Cost is O(fields + elements of vectors of tables or strings); float and byte vectors
are checked by their length word alone, never element by element.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from mindfed.errors import ProtocolError
from mindfed.protocol.layout import SCALAR_SIZES, TABLES, Kind, vtable_offset
from mindfed.protocol.plain_text import schema_invalid_text

MAX_DEPTH = 64
"""Deepest table nesting accepted (C++ Verifier default `max_depth`)."""

MAX_TABLES = 1_000_000
"""Most tables accepted in one buffer (C++ Verifier default `max_tables`)."""

MAX_BUFFER_SIZE = (1 << 31) - 1
"""FLATBUFFERS_MAX_BUFFER_SIZE: buffers must be strictly smaller (offsets are signed 32-bit)."""

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from


class _Slot(NamedTuple):
    """One field compiled for the walk: where its vtable entry is and how to check it."""

    voffset: int  # byte offset of the field's entry inside the vtable (layout.vtable_offset)
    kind: Kind
    size: int  # scalar or vector element size; 4 for offsets
    table: str | None  # nested table name for TABLE and TABLE_VECTOR


def _compile() -> dict[str, tuple[_Slot, ...]]:
    plans: dict[str, tuple[_Slot, ...]] = {}
    for name, fields in TABLES.items():
        slots = []
        for index, field in enumerate(fields):
            if field.kind in (Kind.SCALAR, Kind.SCALAR_VECTOR):
                assert field.elem is not None
                size, table = SCALAR_SIZES[field.elem], None
            else:
                size, table = 4, field.elem
            slots.append(_Slot(vtable_offset(index), field.kind, size, table))
        plans[name] = tuple(slots)
    return plans


_PLANS = _compile()


class VerifyFailure(Exception):
    """Why a buffer was rejected; chained as `__cause__` of the ProtocolError for logs."""


class _Walk:
    """State of one verification: the buffer, its size and the complexity counters."""

    __slots__ = ("buf", "depth", "max_depth", "max_tables", "size", "tables")

    def __init__(self, buf: bytes | bytearray | memoryview, max_depth: int, max_tables: int) -> None:
        self.buf = buf
        self.size = len(buf)
        self.depth = 0
        self.tables = 0
        self.max_depth = max_depth
        self.max_tables = max_tables

    def _in_bounds(self, pos: int, length: int) -> bool:
        # C++ Verifier::Verify(elem, elem_len): note the strict `<` on the length.
        return length < self.size and 0 <= pos <= self.size - length

    def offset(self, pos: int) -> int:
        """Checks the uoffset stored at `pos` (Verifier::VerifyOffset); returns its target."""
        if pos & 3 or not self._in_bounds(pos, 4):
            raise VerifyFailure(f"uoffset at {pos} misaligned or out of bounds")
        rel: int = _U32(self.buf, pos)[0]
        if rel == 0 or rel >= 1 << 31:
            raise VerifyFailure(f"uoffset at {pos} is {rel}: zero or past 2 GiB")
        if not self._in_bounds(pos + rel, 1):
            raise VerifyFailure(f"uoffset at {pos} points past the buffer")
        return pos + rel

    def vector(self, pos: int, elem_size: int) -> int:
        """Checks a vector or string header and body (VerifyVectorOrString); returns its length."""
        if pos & 3 or not self._in_bounds(pos, 4):
            raise VerifyFailure(f"vector length at {pos} misaligned or out of bounds")
        count: int = _U32(self.buf, pos)[0]
        if count >= MAX_BUFFER_SIZE // elem_size:
            raise VerifyFailure(f"vector at {pos} claims {count} elements")
        if not self._in_bounds(pos, 4 + elem_size * count):
            raise VerifyFailure(f"vector at {pos} with {count} elements overruns the buffer")
        return count

    def string(self, pos: int) -> None:
        """Checks a string: length, bytes and the NUL terminator."""
        end = pos + 4 + self.vector(pos, 1)
        if not self._in_bounds(end, 1) or self.buf[end] != 0:
            raise VerifyFailure(f"string at {pos} lacks its NUL terminator")

    def table(self, pos: int, name: str) -> None:
        """Checks the table of type `name` at `pos` and everything it references."""
        vtable, vsize = self._table_start(pos)
        buf = self.buf
        for slot in _PLANS[name]:
            if slot.voffset >= vsize:
                break  # an older writer: this and later fields are absent
            field_off = _U16(buf, vtable + slot.voffset)[0]
            if field_off == 0:
                continue
            field_pos = pos + field_off
            if slot.kind is Kind.SCALAR:
                if field_pos % slot.size or not self._in_bounds(field_pos, slot.size):
                    raise VerifyFailure(f"{name} scalar at {field_pos} misaligned or out of bounds")
                continue
            target = self.offset(field_pos)
            if slot.kind is Kind.STRING:
                self.string(target)
            elif slot.kind is Kind.SCALAR_VECTOR:
                self.vector(target, slot.size)
            elif slot.kind is Kind.TABLE:
                assert slot.table is not None
                self.table(target, slot.table)
            else:
                self._offset_vector(target, slot)
        self.depth -= 1

    def _offset_vector(self, pos: int, slot: _Slot) -> None:
        # Elements are read like C++ Vector<Offset<T>>::Get: element position plus
        # the stored uoffset, with no zero check; the target check rejects strays.
        count = self.vector(pos, 4)
        buf = self.buf
        for elem_pos in range(pos + 4, pos + 4 + 4 * count, 4):
            target = elem_pos + _U32(buf, elem_pos)[0]
            if slot.kind is Kind.STRING_VECTOR:
                self.string(target)
            else:
                assert slot.table is not None
                self.table(target, slot.table)

    def _table_start(self, pos: int) -> tuple[int, int]:
        # Verifier::VerifyTableStart plus the complexity counters.
        if pos & 3 or not self._in_bounds(pos, 4):
            raise VerifyFailure(f"table at {pos} misaligned or out of bounds")
        self.depth += 1
        self.tables += 1
        if self.depth > self.max_depth or self.tables > self.max_tables:
            raise VerifyFailure(f"too complex: depth {self.depth}, {self.tables} tables")
        vtable = pos - _I32(self.buf, pos)[0]
        if vtable & 1 or not self._in_bounds(vtable, 2):
            raise VerifyFailure(f"vtable of table at {pos} misaligned or out of bounds")
        vsize = _U16(self.buf, vtable)[0]
        if vsize & 1 or not self._in_bounds(vtable, vsize):
            raise VerifyFailure(f"vtable at {vtable} has bad size {vsize}")
        if vsize >= 4 and not self._in_bounds(pos, _U16(self.buf, vtable + 2)[0]):
            raise VerifyFailure(f"table at {pos} overruns the buffer")
        return vtable, vsize


def verify(
    buf: bytes | bytearray | memoryview,
    root_table: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_tables: int = MAX_TABLES,
) -> None:
    """Checks that `buf` is a well-formed FlatBuffer whose root is a `root_table`.

    Args:
        buf: The raw request or response body (no file identifier, no size prefix).
        root_table: A table name of fl_job.fbs/cipher.fbs, e.g. "RequestFLJob".
        max_depth: Deepest table nesting accepted (the root is depth 1).
        max_tables: Most tables accepted in total.

    Raises:
        ProtocolError: The buffer is malformed; the message is MindSpore's
            "The schema of {root_table} is invalid." and `__cause__` is a
            VerifyFailure saying what was wrong.
        KeyError: `root_table` is not a table of the schema (a caller bug).
    """
    if root_table not in _PLANS:
        raise KeyError(f"unknown table {root_table!r}")
    if isinstance(buf, memoryview) and (buf.ndim != 1 or buf.itemsize != 1):
        buf = buf.cast("B")
    walk = _Walk(buf, max_depth, max_tables)
    try:
        if walk.size >= MAX_BUFFER_SIZE:
            raise VerifyFailure(f"buffer of {walk.size} bytes exceeds 2 GiB")
        walk.table(walk.offset(0), root_table)
    except VerifyFailure as failure:
        raise ProtocolError(schema_invalid_text(root_table)) from failure
