"""The few pieces of the protobuf wire format that `.ckpt` files need, so mindfed has no protobuf dependency.

Only varints (wire type 0) and length-delimited fields (wire type 2) carry data in a checkpoint; fixed-width
fields (wire types 1 and 5) are understood well enough to be skipped. Groups (3, 4) are refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mindfed.errors import ModelFormatError

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

_MAX_VARINT_BYTES = 10  # a 64-bit value needs at most ten 7-bit groups


class WireError(ValueError):
    """The bytes are not valid protobuf; `offset` is the absolute byte offset of the problem."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte offset {offset}")
        self.offset = offset


def read_message_file(path: str | os.PathLike[str], kind: str) -> bytes:
    """The bytes of a protobuf model file (`kind`: "checkpoint file", "MindIR file"), read whole.

    Raises:
        ModelFormatError: it cannot be opened, or is empty; the message names the file.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read {kind}: {exc}") from exc
    if not data:
        raise ModelFormatError(f"{path}: {kind} is empty")
    return data


def encode_varint(value: int) -> bytes:
    """Encodes an unsigned value, or a negative int64 as its 10-byte two's complement (as protobuf does).

    Raises:
        ValueError: `value` does not fit in 64 bits.
    """
    if value < 0:
        if value < -(1 << 63):
            raise ValueError(f"{value} does not fit in int64")
        value += 1 << 64
    if value >= 1 << 64:
        raise ValueError(f"{value} does not fit in 64 bits")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_key(field_number: int, wire_type: int) -> bytes:
    """Encodes a field key (field number and wire type)."""
    return encode_varint((field_number << 3) | wire_type)


def encode_length_delimited(field_number: int, payload: bytes | bytearray | memoryview) -> bytes:
    """Encodes a whole length-delimited field (key, length, payload)."""
    return encode_key(field_number, LENGTH_DELIMITED) + encode_varint(len(payload)) + bytes(payload)


def decode_varint(buffer: bytes | memoryview, offset: int, end: int) -> tuple[int, int]:
    """Decodes an unsigned varint starting at `offset`; returns (value, offset after it).

    Raises:
        WireError: the varint runs past `end` or is longer than 10 bytes.
    """
    value = 0
    shift = 0
    position = offset
    while True:
        if position >= end:
            raise WireError("truncated varint", offset)
        if position - offset >= _MAX_VARINT_BYTES:
            raise WireError("varint longer than 10 bytes", offset)
        byte = buffer[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if byte < 0x80:
            return value & ((1 << 64) - 1), position
        shift += 7


def as_int64(value: int) -> int:
    """Reinterprets a decoded 64-bit varint as a signed int64."""
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True, slots=True)
class Field:
    """One decoded field. For LENGTH_DELIMITED, `start`/`end` bound the payload; for VARINT, `value` holds it."""

    number: int
    wire_type: int
    key_offset: int
    value: int = 0
    start: int = 0
    end: int = 0


def iter_fields(buffer: bytes | memoryview, start: int, end: int) -> Iterator[Field]:
    """Yields the fields of the message stored in `buffer[start:end]`, with absolute offsets.

    Raises:
        WireError: a key, varint or length runs past `end`, or an unsupported wire type (groups) is met.
    """
    position = start
    while position < end:
        key_offset = position
        key, position = decode_varint(buffer, position, end)
        number, wire_type = key >> 3, key & 0x7
        if number == 0:
            raise WireError("field number 0", key_offset)
        if wire_type == VARINT:
            value, position = decode_varint(buffer, position, end)
            yield Field(number, wire_type, key_offset, value=value)
        elif wire_type == LENGTH_DELIMITED:
            length, payload_start = decode_varint(buffer, position, end)
            if length > end - payload_start:
                raise WireError(f"field {number} claims {length} bytes, only {end - payload_start} remain", key_offset)
            position = payload_start + length
            yield Field(number, wire_type, key_offset, start=payload_start, end=position)
        elif wire_type in (FIXED64, FIXED32):
            width = 8 if wire_type == FIXED64 else 4
            if width > end - position:
                raise WireError(f"truncated fixed-width field {number}", key_offset)
            position += width
            yield Field(number, wire_type, key_offset, start=position - width, end=position)
        else:
            raise WireError(f"unsupported wire type {wire_type} in field {number}", key_offset)
