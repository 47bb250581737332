"""The `.safetensors` format, implemented directly: an 8-byte little-endian header length, a JSON header
`{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`, then the raw little-endian data
(offsets are relative to the end of the header)."""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mindfed.errors import ModelFormatError
from mindfed.model.atomic_file import write_atomically

logger = logging.getLogger(__name__)

_HEADER_LENGTH = struct.Struct("<Q")
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the reference implementation's limit; guards against absurd lengths
_METADATA_KEY = "__metadata__"

# safetensors dtype -> little-endian numpy dtype; BF16 is read as raw uint16 and widened to float32.
_NUMPY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
_SAFETENSORS_TYPES: dict[np.dtype, str] = {
    dtype.newbyteorder("="): name for name, dtype in _NUMPY_DTYPES.items() if name != "BF16"
}


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads every tensor of a `.safetensors` file, in header order; tensors of unknown dtypes (FP8, ...) are
    skipped with a warning and `__metadata__` is ignored.

    Returns:
        name -> owned array (BF16 becomes float32).

    Raises:
        ModelFormatError: the file cannot be read, or its header or offsets are invalid.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read safetensors file: {exc}") from exc
    header, body = _split(data, path)
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == _METADATA_KEY:
            continue
        array = _tensor(name, entry, body, path)
        if array is not None:
            tensors[name] = array
    return tensors


def _split(data: bytes, path: str | os.PathLike[str]) -> tuple[dict[str, Any], memoryview]:
    """Returns (the parsed JSON header, the data region)."""
    if len(data) < _HEADER_LENGTH.size:
        raise ModelFormatError(f"{path}: {len(data)} bytes is too short for a safetensors header")
    (header_length,) = _HEADER_LENGTH.unpack_from(data)
    if header_length > min(_MAX_HEADER_BYTES, len(data) - _HEADER_LENGTH.size):
        raise ModelFormatError(f"{path}: header length {header_length} exceeds the file ({len(data)} bytes)")
    header_end = _HEADER_LENGTH.size + header_length
    try:
        header = json.loads(data[_HEADER_LENGTH.size : header_end].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: header is not UTF-8 JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path}: header is not a JSON object")
    return header, memoryview(data)[header_end:]


def _tensor(name: str, entry: Any, body: memoryview, path: str | os.PathLike[str]) -> np.ndarray | None:
    """Decodes one header entry against the data region; None for an unsupported dtype."""
    try:
        dtype_name, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
    except (TypeError, KeyError, ValueError) as exc:
        raise ModelFormatError(f"{path}: header entry {name!r} is malformed: {entry!r}") from exc
    if not isinstance(shape, list) or not all(isinstance(dim, int) and dim >= 0 for dim in shape):
        raise ModelFormatError(f"{path}: tensor {name!r} has invalid shape {shape!r}")
    if dtype_name not in _NUMPY_DTYPES:
        logger.warning("%s: skipping %r of unsupported dtype %r", path, name, dtype_name)
        return None
    dtype = _NUMPY_DTYPES[dtype_name]
    count = math.prod(shape)  # Python ints: a forged shape cannot overflow
    needed = count * dtype.itemsize
    if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= len(body)):
        raise ModelFormatError(f"{path}: tensor {name!r} offsets [{begin}, {end}] leave the data ({len(body)} bytes)")
    if end - begin != needed:
        raise ModelFormatError(
            f"{path}: tensor {name!r} has {end - begin} bytes, shape {shape} {dtype_name} needs {needed}"
        )
    array = np.frombuffer(body[begin:end], dtype=dtype).copy().reshape(shape)
    if dtype_name == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(dtype.newbyteorder("="), copy=False)


def save_safetensors(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray]) -> None:
    """Writes `tensors` as a `.safetensors` file (atomically), data in the mapping's order.

    The header is padded with spaces to a multiple of 8 bytes, as the reference writer does, so readers that
    map the file can view the data aligned.

    Raises:
        ModelFormatError: a name is `__metadata__` or not a str, a dtype has no safetensors name, or the file
            cannot be written.
    """
    header: dict[str, Any] = {}
    arrays: list[np.ndarray] = []
    offset = 0
    for name, value in tensors.items():
        if not isinstance(name, str) or name == _METADATA_KEY:
            raise ModelFormatError(f"{path}: {name!r} cannot name a tensor")
        array = np.asarray(value)
        dtype_name = _SAFETENSORS_TYPES.get(array.dtype.newbyteorder("="))
        if dtype_name is None:
            raise ModelFormatError(f"{path}: tensor {name!r}: dtype {array.dtype} has no safetensors type")
        data = np.ascontiguousarray(array, dtype=_NUMPY_DTYPES[dtype_name])
        header[name] = {"dtype": dtype_name, "shape": list(array.shape), "data_offsets": [offset, offset + data.nbytes]}
        arrays.append(data)
        offset += data.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    write_atomically(path, _chunks(encoded, arrays))


def _chunks(header: bytes, arrays: list[np.ndarray]) -> Iterator[bytes | memoryview]:
    yield _HEADER_LENGTH.pack(len(header))
    yield header
    for array in arrays:
        yield array.reshape(-1).view(np.uint8).data
