"""MindSpore `.ckpt` files (spec §13): read any tensors MindSpore writes, write files `load_checkpoint` reads.

Layout (protobuf proto2, `mindspore/ccsrc/utils/checkpoint.proto`): the file is a concatenation of serialized
`Checkpoint{repeated Value value = 1}` messages, `Value{string tag = 1; oneof {TensorProto tensor = 2;
MapTensorProto maptensor = 3}}`, `TensorProto{repeated int64 dims = 1; string tensor_type = 2; bytes
tensor_content = 3}`. Concatenated messages parse as one `Checkpoint` (protobuf merges repeated fields), so the
reader walks field 1 of the whole file. Unknown fields (e.g. a newer version's CRC) are skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from mindfed.errors import ModelFormatError
from mindfed.model import protobuf_wire as wire
from mindfed.model.atomic_file import write_atomically

logger = logging.getLogger(__name__)

# MindSpore dtype string -> little-endian numpy dtype of tensor_content. "BFloat16" is read as raw uint16 and
# widened to float32 below, since numpy has no bfloat16.
_NUMPY_DTYPES: dict[str, np.dtype] = {
    "Bool": np.dtype(np.bool_),
    "Int8": np.dtype("<i1"),
    "Int16": np.dtype("<i2"),
    "Int32": np.dtype("<i4"),
    "Int64": np.dtype("<i8"),
    "UInt8": np.dtype("<u1"),
    "UInt16": np.dtype("<u2"),
    "UInt32": np.dtype("<u4"),
    "UInt64": np.dtype("<u8"),
    "Float16": np.dtype("<f2"),
    "Float32": np.dtype("<f4"),
    "Float64": np.dtype("<f8"),
    "BFloat16": np.dtype("<u2"),
    "Complex64": np.dtype("<c8"),
    "Complex128": np.dtype("<c16"),
}
_MINDSPORE_TYPES: dict[np.dtype, str] = {
    dtype.newbyteorder("="): name for name, dtype in _NUMPY_DTYPES.items() if name != "BFloat16"
}

_CHECKPOINT_VALUE = 1
_VALUE_TAG, _VALUE_TENSOR, _VALUE_MAP_TENSOR = 1, 2, 3
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_CONTENT = 1, 2, 3


@dataclass(frozen=True, slots=True)
class _Slice:
    """One `Value` with a TensorProto: a whole tensor, or one `np.array_split` piece of a large one."""

    dims: tuple[int, ...]
    tensor_type: str
    content: memoryview
    offset: int  # byte offset of the Value, for error messages


def read_ckpt(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads every tensor of a MindSpore checkpoint, in file order.

    Several consecutive Values with the same tag are slices of one tensor; their contents are concatenated and
    shaped by `dims` (the full shape, which MindSpore repeats in every slice). `dims == [0]` with one element is
    a scalar (shape `()`). MapTensor entries and unknown dtypes are skipped with a warning.

    Args:
        path: the `.ckpt` file.

    Returns:
        tag -> owned numpy array (dtype as stored; BFloat16 becomes float32).

    Raises:
        ModelFormatError: the file cannot be opened, is empty, or is corrupt or truncated; the message names the
            file and the byte offset.
    """
    data = wire.read_message_file(path, "checkpoint file")
    try:
        slices = _parse_slices(memoryview(data), path)
    except wire.WireError as exc:
        raise ModelFormatError(f"{path}: corrupt or truncated checkpoint: {exc}") from exc
    tensors: dict[str, np.ndarray] = {}
    for tag, pieces in slices.items():
        array = _assemble(tag, pieces, path)
        if array is not None:
            tensors[tag] = array
    return tensors


def _parse_slices(buffer: memoryview, path: str | os.PathLike[str]) -> dict[str, list[_Slice]]:
    """Walks the file's Values; returns tag -> its slices in order. MapTensor values are skipped."""
    slices: dict[str, list[_Slice]] = {}
    previous_tag: str | None = None
    for field in wire.iter_fields(buffer, 0, len(buffer)):
        if field.number != _CHECKPOINT_VALUE:
            continue  # fields a newer MindSpore appends (CRC, ...) carry no tensors
        _expect_length_delimited(field, "Checkpoint.value")
        tag, piece = _parse_value(buffer, field)
        if piece is None:
            logger.warning("%s: skipping MapTensor %r (not supported by the FL server)", path, tag)
            previous_tag = tag
            continue
        if tag in slices and tag != previous_tag:
            raise wire.WireError(f"tensor {tag!r} appears again after other tensors", field.key_offset)
        slices.setdefault(tag, []).append(piece)
        previous_tag = tag
    return slices


def _parse_value(buffer: memoryview, value: wire.Field) -> tuple[str, _Slice | None]:
    """Parses one `Checkpoint.Value`; the slice is None for a MapTensor."""
    tag: str | None = None
    tensor: wire.Field | None = None
    is_map = False
    for field in wire.iter_fields(buffer, value.start, value.end):
        if field.number == _VALUE_TAG:
            _expect_length_delimited(field, "Value.tag")
            try:
                tag = bytes(buffer[field.start : field.end]).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise wire.WireError(f"tag is not UTF-8 ({exc.reason})", field.key_offset) from exc
        elif field.number == _VALUE_TENSOR:
            _expect_length_delimited(field, "Value.tensor")
            tensor, is_map = field, False
        elif field.number == _VALUE_MAP_TENSOR:
            _expect_length_delimited(field, "Value.maptensor")
            tensor, is_map = field, True
    if tag is None:
        raise wire.WireError("Value has no tag", value.key_offset)
    if tensor is None:
        raise wire.WireError(f"Value {tag!r} has no tensor", value.key_offset)
    if is_map:
        return tag, None
    return tag, _parse_tensor(buffer, tensor, value.key_offset)


def _parse_tensor(buffer: memoryview, tensor: wire.Field, value_offset: int) -> _Slice:
    """Parses one TensorProto (dims accepted packed or unpacked, as proto2 parsers must)."""
    dims: list[int] = []
    tensor_type: str | None = None
    content: memoryview | None = None
    for field in wire.iter_fields(buffer, tensor.start, tensor.end):
        if field.number == _TENSOR_DIMS and field.wire_type == wire.VARINT:
            dims.append(wire.as_int64(field.value))
        elif field.number == _TENSOR_DIMS and field.wire_type == wire.LENGTH_DELIMITED:
            position = field.start
            while position < field.end:
                value, position = wire.decode_varint(buffer, position, field.end)
                dims.append(wire.as_int64(value))
        elif field.number == _TENSOR_TYPE:
            _expect_length_delimited(field, "TensorProto.tensor_type")
            tensor_type = bytes(buffer[field.start : field.end]).decode("ascii", errors="replace")
        elif field.number == _TENSOR_CONTENT:
            _expect_length_delimited(field, "TensorProto.tensor_content")
            content = buffer[field.start : field.end]
    if tensor_type is None or content is None:
        raise wire.WireError("TensorProto lacks tensor_type or tensor_content", tensor.key_offset)
    if any(dim < 0 for dim in dims):
        raise wire.WireError(f"negative dimension in dims {dims}", tensor.key_offset)
    return _Slice(tuple(dims), tensor_type, content, value_offset)


def _expect_length_delimited(field: wire.Field, what: str) -> None:
    if field.wire_type != wire.LENGTH_DELIMITED:
        raise wire.WireError(f"{what} has wire type {field.wire_type}, expected 2", field.key_offset)


def _assemble(tag: str, pieces: list[_Slice], path: str | os.PathLike[str]) -> np.ndarray | None:
    """Concatenates a tensor's slices and gives it its shape; None (with a warning) for an unknown dtype."""
    first = pieces[0]
    if first.tensor_type not in _NUMPY_DTYPES:
        logger.warning("%s: skipping %r of unsupported dtype %r", path, tag, first.tensor_type)
        return None
    for piece in pieces[1:]:
        if (piece.dims, piece.tensor_type) != (first.dims, first.tensor_type):
            raise ModelFormatError(
                f"{path}: slices of {tag!r} disagree ({piece.dims} {piece.tensor_type} vs "
                f"{first.dims} {first.tensor_type}) at byte offset {piece.offset}"
            )
    dtype = _NUMPY_DTYPES[first.tensor_type]
    content = b"".join(piece.content for piece in pieces) if len(pieces) > 1 else first.content
    if len(content) % dtype.itemsize:
        raise ModelFormatError(
            f"{path}: {tag!r} has {len(content)} content bytes, not a multiple of {dtype.itemsize} "
            f"({first.tensor_type}) at byte offset {first.offset}"
        )
    flat = np.frombuffer(content, dtype=dtype).copy()
    shape = _shape_of(first.dims, flat.size)
    if shape is None:
        raise ModelFormatError(
            f"{path}: {tag!r} has dims {list(first.dims)} but {flat.size} elements at byte offset {first.offset}"
        )
    if first.tensor_type == "BFloat16":
        # bfloat16 is the upper half of a float32, so widening is a shift of the raw bits.
        return (flat.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return flat.astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def _shape_of(dims: tuple[int, ...], count: int) -> tuple[int, ...] | None:
    """The array shape for `dims` and an element count; None when they disagree."""
    if dims in ((0,), ()) and count == 1:
        return ()  # MindSpore writes dims [0] for a scalar
    expected = 1
    for dim in dims:
        expected *= dim
    return dims if expected == count else None


def _message_head(tag: str, array: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Builds one serialized `Checkpoint` message except its trailing tensor bytes.

    Returns:
        (every byte of the message before tensor_content's payload, the little-endian contiguous array whose
        bytes complete it).

    Raises:
        ModelFormatError: the dtype has no MindSpore name, or the tag is empty.
    """
    if not isinstance(tag, str) or not tag:
        raise ModelFormatError(f"checkpoint tensor names must be non-empty strings, got {tag!r}")
    native = array.dtype.newbyteorder("=")
    tensor_type = _MINDSPORE_TYPES.get(native)
    if tensor_type is None:
        raise ModelFormatError(f"tensor {tag!r}: dtype {array.dtype} has no MindSpore checkpoint type")
    data = np.ascontiguousarray(array, dtype=_NUMPY_DTYPES[tensor_type])
    dims = [int(dim) for dim in array.shape] or [0]  # MindSpore's scalar convention
    content_length = data.size * data.itemsize
    tensor_head = b"".join(wire.encode_key(_TENSOR_DIMS, wire.VARINT) + wire.encode_varint(dim) for dim in dims)
    tensor_head += wire.encode_length_delimited(_TENSOR_TYPE, tensor_type.encode("ascii"))
    tensor_head += wire.encode_key(_TENSOR_CONTENT, wire.LENGTH_DELIMITED) + wire.encode_varint(content_length)
    tensor_length = len(tensor_head) + content_length
    value_head = wire.encode_length_delimited(_VALUE_TAG, tag.encode("utf-8"))
    value_head += wire.encode_key(_VALUE_TENSOR, wire.LENGTH_DELIMITED) + wire.encode_varint(tensor_length)
    value_length = len(value_head) + tensor_length
    checkpoint_head = wire.encode_key(_CHECKPOINT_VALUE, wire.LENGTH_DELIMITED) + wire.encode_varint(value_length)
    return checkpoint_head + value_head + tensor_head, data


def write_ckpt(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray]) -> None:
    """Writes `tensors` as a MindSpore checkpoint, byte-identical to `mindspore.save_checkpoint`'s layout.

    One `Checkpoint` message per tensor, in the mapping's order; no slicing (so a single tensor must stay under
    protobuf's 2 GiB message limit). The file appears atomically: it is written to a temporary file in the same
    directory, fsynced, then renamed over `path`, so readers never see a half-written checkpoint.

    Args:
        path: destination; its directory must exist.
        tensors: name -> array of a dtype MindSpore names (bool, int8..64, uint8..64, float16/32/64, complex).

    Raises:
        ModelFormatError: a dtype is unsupported, or the file cannot be written.
    """
    parts = [_message_head(tag, np.asarray(array)) for tag, array in tensors.items()]
    write_atomically(path, _chunks(parts))


def _chunks(parts: list[tuple[bytes, np.ndarray]]) -> Iterator[bytes | memoryview]:
    """Each message's header bytes, then its tensor bytes as a zero-copy view."""
    for head, data in parts:
        yield head
        yield data.reshape(-1).view(np.uint8).data
