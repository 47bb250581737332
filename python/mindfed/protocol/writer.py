"""Shared builder helpers: tensor vectors, string vectors and the final bytes.

Tensors go in with `Builder.CreateNumpyVector` (one memcpy, not one call per float),
and builders start with a buffer sized for the whole message so they never regrow
(each regrowth copies everything written so far).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import flatbuffers
import numpy as np
import numpy.typing as npt

from mindfed.protocol.generated import CompressFeatureMap as CfmGen
from mindfed.protocol.generated import FeatureMap as FmGen

Weights = Sequence[tuple[str, npt.ArrayLike]]
"""(name, tensor) pairs; tensors of any shape, converted to flat little-endian float32."""

CompressedWeights = Sequence[tuple[str, npt.ArrayLike, float, float]]
"""(name, int8 codes, min_val, max_val) per tensor."""

_PER_ENTRY_OVERHEAD = 64  # table, vtable, offsets, padding: generous, bytes
_BASE_SIZE = 1024  # scalars, short strings, plan and cipher tables


def new_builder(payload_bytes: int) -> flatbuffers.Builder:
    """Returns a Builder whose initial buffer already fits `payload_bytes` plus headers."""
    return flatbuffers.Builder(min(payload_bytes + _BASE_SIZE, flatbuffers.Builder.MAX_BUFFER_SIZE))


def payload_size(feature_map: Weights | None, compressed: CompressedWeights | None = None) -> int:
    """Estimates the bytes the tensors of a message take, for `new_builder`."""
    total = 0
    for name, data in feature_map or ():
        total += len(name) + _PER_ENTRY_OVERHEAD + 4 * int(np.size(data))
    for name, data, _, _ in compressed or ():
        total += len(name) + _PER_ENTRY_OVERHEAD + int(np.size(data))
    return total


def offset_vector(builder: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    """Writes a vector of already-built table or string offsets."""
    builder.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):  # FlatBuffers are written back to front
        builder.PrependUOffsetTRelative(off)
    return int(builder.EndVector())


def numpy_vector(builder: flatbuffers.Builder, data: npt.ArrayLike, dtype: str) -> int:
    """Writes `data` flattened as a vector of `dtype` (e.g. "<f4", "i1", "<i4", "u1")."""
    flat = np.ascontiguousarray(data, dtype=np.dtype(dtype)).reshape(-1)
    return int(builder.CreateNumpyVector(flat))


def string_vector(builder: flatbuffers.Builder, strings: Iterable[str]) -> int:
    """Writes a [string] vector."""
    return offset_vector(builder, [builder.CreateString(s) for s in strings])


def feature_maps(builder: flatbuffers.Builder, weights: Weights) -> int:
    """Writes a [FeatureMap] vector (also used for UnsupervisedEvalItem-shaped data)."""
    offsets = []
    for name, data in weights:
        name_off = builder.CreateString(name)
        data_off = numpy_vector(builder, data, "<f4")
        FmGen.FeatureMapStart(builder)
        FmGen.FeatureMapAddWeightFullname(builder, name_off)
        FmGen.FeatureMapAddData(builder, data_off)
        offsets.append(FmGen.FeatureMapEnd(builder))
    return offset_vector(builder, offsets)


def compress_feature_maps(builder: flatbuffers.Builder, weights: CompressedWeights) -> int:
    """Writes a [CompressFeatureMap] vector."""
    offsets = []
    for name, data, min_val, max_val in weights:
        name_off = builder.CreateString(name)
        data_off = numpy_vector(builder, data, "i1")
        CfmGen.CompressFeatureMapStart(builder)
        CfmGen.CompressFeatureMapAddWeightFullname(builder, name_off)
        CfmGen.CompressFeatureMapAddCompressData(builder, data_off)
        CfmGen.CompressFeatureMapAddMinVal(builder, min_val)
        CfmGen.CompressFeatureMapAddMaxVal(builder, max_val)
        offsets.append(CfmGen.CompressFeatureMapEnd(builder))
    return offset_vector(builder, offsets)


def finish(builder: flatbuffers.Builder, root: int) -> bytes:
    """Finishes without a file identifier (as MindSpore) and returns the message bytes."""
    builder.Finish(root)
    # One copy straight out of the builder's bytearray (Output() would add a second).
    return bytes(memoryview(builder.Bytes)[builder.Head() :])
