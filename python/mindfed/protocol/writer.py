"""Shared builder helpers: tensor vectors, string vectors and the final bytes.

Tensors go in with one numpy copy each, straight into the builder's buffer (not one call per float, and not
`Builder.CreateNumpyVector`, which copies twice: `tobytes()`, then into the buffer). Builders start with a buffer
sized for the whole message so they never regrow (each regrowth copies everything written so far), and a builder
may be given its buffer (`new_builder(..., into=allocate)`): the server builds the model it sends to every device
straight into the memory file it sends it from (server/shared_body.py), without a copy in the heap.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterable, Sequence

import flatbuffers
import numpy as np
import numpy.typing as npt

from mindfed.protocol.generated import CompressFeatureMap as CfmGen
from mindfed.protocol.generated import FeatureMap as FmGen

Weights = Sequence[tuple[str, npt.ArrayLike]]
"""(name, tensor) pairs; tensors of any shape, converted to flat little-endian float32."""

CompressedWeights = Sequence[tuple[str, npt.ArrayLike, float, float]]
"""(name, int8 codes, min_val, max_val) per tensor."""

Allocate = Callable[[int], bytearray | mmap.mmap]
"""Gives a builder its buffer of the size asked for (writable; the message ends up at its end)."""

_PER_ENTRY_OVERHEAD = 64  # table, vtable, offsets, padding: generous, bytes
_BASE_SIZE = 1024  # scalars, short strings, plan and cipher tables
# ... for a buffer allocated elsewhere: a builder writes back to front, so the unused head of such a buffer is never
# touched (a memory file's pages there are never allocated), and a roomy bound there costs nothing
_ALLOCATED_BASE_SIZE = 64 * 1024


def new_builder(payload_bytes: int, into: Allocate | None = None) -> flatbuffers.Builder:
    """Returns a Builder whose initial buffer already fits `payload_bytes` plus headers: a fresh bytearray, or the
    one `into` allocates. A message that outgrows an allocated buffer still builds, in a bytearray the builder
    grows into (`finish_into` then returns a view of that)."""
    if into is None:
        return flatbuffers.Builder(min(payload_bytes + _BASE_SIZE, flatbuffers.Builder.MAX_BUFFER_SIZE))
    builder = flatbuffers.Builder(0)
    builder.Bytes = into(min(payload_bytes + _ALLOCATED_BASE_SIZE, flatbuffers.Builder.MAX_BUFFER_SIZE))
    builder.head = len(builder.Bytes)
    return builder


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
    """Writes `data` flattened as a vector of `dtype` (e.g. "<f4", "i1", "<i4", "u1"): what
    `Builder.CreateNumpyVector` writes, with one copy instead of two."""
    flat = np.ascontiguousarray(data, dtype=np.dtype(dtype)).reshape(-1)
    builder.StartVector(flat.itemsize, flat.size, flat.dtype.alignment)  # alignment, room, and the nesting check
    builder.head -= flat.nbytes
    if flat.nbytes:
        np.frombuffer(builder.Bytes, np.uint8, flat.nbytes, builder.head)[:] = flat.view(np.uint8)
    builder.vectorNumElems = flat.size
    return int(builder.EndVector())


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
    with finish_into(builder, root) as message:
        return bytes(message)  # one copy straight out of the builder's buffer (Output() would add a second)


def finish_into(builder: flatbuffers.Builder, root: int) -> memoryview:
    """Finishes like `finish` and returns the message where it was built: a view of the end of the builder's buffer
    (the one `new_builder`'s `into` allocated, unless the message outgrew it)."""
    builder.Finish(root)
    return memoryview(builder.Bytes)[builder.Head() :]
