"""Secure compressed uploads: DIFF_SPARSE_QUANT under PW_ENCRYPT, masked in the ring Z/2^32 (docs/compression.md).

Mindfed-only (MindSpore switches compression off under PW_ENCRYPT): startFLJob announces upload_compress_type
SECURE_SPARSE_QUANT with the rate and the grid bound B (`upload_quant_bound`). Every device of an iteration:

1. keeps the same coordinates: `sparse_indices(D, rate, iteration)` over all the model's tensors concatenated in
   the order startFLJob sends them (name order; D their total size, K the kept count). All of them, not only the
   aggregated ones: a device cannot tell which are, and the server drops the others after decoding;
2. quantises its unweighted difference d = w_new − w_old on the kept coordinates on the job's shared grid
   [lo, hi] = [−B, B] (B = `compression.secure_quant_bound`): clip to the grid, c = rint((d − lo) / scale) ∈
   [0, 254], scale = (hi − lo) / 254. 255 levels, not 256, so that d = 0 is the code 127 exactly: an untrained or
   unchanged coordinate adds nothing, where a 256-level grid would add +B/255 to it in every iteration;
3. uploads y = n·c + PRG32(b_u) + Σ_v sgn(u, v)·PRG32(s_uv) mod 2^32 (n its data size) as K little-endian
   uint32 words, one mask stream over the concatenation (from offset 0), split back into the tensors' kept
   ranges: tensor t's `compress_data` is its 4·k_t bytes, min_val/max_val the grid (checked exactly).

The server sums the words mod 2^32, removes the masks left after the uploaders' pairs cancel, and decodes once:
Σ n_u·w_u = scale·S + Σn·lo on the kept coordinates (S = Σ n_u·c_u, exact) plus Σn·w_latest on every coordinate.
S is exact while Σn·254 < 2^32 (`ring_capacity_ok`; with n ≤ 65535 that is any 258 devices).

In the server's float32 accumulators (summed across servers, checkpointed and replayed like every other update) a
masked upload travels as 4 byte-limb arrays of K values in [0, 255]: float32 sums of N ≤ 65793 limbs are exact
integers, and Σ_j limb_sum_j·256^j mod 2^32 is the ring sum. Those 4·K floats live in the slot RING_SLOT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mindfed import _core
from mindfed.compression.sparse_mask import kept_count, sparse_indices
from mindfed.secagg.ring_capacity import CODE_MAX, ring_capacity_ok

U32Array = npt.NDArray[np.uint32]
F32Array = npt.NDArray[np.float32]
RING_SLOT = "__mindfed_ring__"  # the accumulator slot of the limb sums (never a tensor name of a model)
LIMBS = 4
MAX_LIMB_SUMMANDS = (2**24 - 1) // 255  # float32 limb sums stay exact integers up to this many uploads


@dataclass(frozen=True, slots=True)
class RingLayout:
    """Where the kept coordinates of one iteration lie: per tensor, in model order.

    Attributes:
        names: the aggregated tensors, in the order of the concatenation.
        sizes: their element counts.
        rate: upload_sparse_rate as float32.
        iteration: the mask seed.
        lo: the grid's lower end (float32).
        hi: the grid's upper end (float32).
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    rate: float
    iteration: int
    lo: float
    hi: float

    @classmethod
    def of(cls, sizes: Mapping[str, int], names: Sequence[str], rate: float, iteration: int,
           bound: float) -> RingLayout:
        b = float(np.float32(bound))
        return cls(tuple(names), tuple(int(sizes[n]) for n in names), float(np.float32(rate)), int(iteration),
                   -b, b)

    @property
    def scale(self) -> float:
        return (self.hi - self.lo) / CODE_MAX

    def kept(self) -> npt.NDArray[np.int32]:
        return sparse_indices(sum(self.sizes), self.rate, self.iteration)

    def bounds(self) -> npt.NDArray[np.int64]:
        """bounds[i]..bounds[i+1]: tensor i's range in the K kept words."""
        return np.searchsorted(self.kept(), np.cumsum([0, *self.sizes])).astype(np.int64)

    @property
    def k(self) -> int:
        return int(self.kept().size)


def slot_size(sizes: Mapping[str, int], rate: float) -> int:
    """The float32 length of RING_SLOT for a model of these tensor sizes: 4 limbs per kept coordinate."""
    return LIMBS * kept_count(sum(int(s) for s in sizes.values()), float(np.float32(rate)))


def quantize_codes(layout: RingLayout, diffs: Mapping[str, npt.ArrayLike], data_size: int) -> U32Array:
    """n·c on the K kept coordinates (uint32, unmasked) of the unweighted diffs d = w_new − w_old."""
    flat = np.concatenate([np.asarray(diffs[name], np.float64).reshape(-1) for name in layout.names])
    if flat.size != sum(layout.sizes):
        raise ValueError(f"the diffs hold {flat.size} values, the layout {sum(layout.sizes)}")
    values = flat[layout.kept()]
    if not np.all(np.isfinite(values)):
        raise ValueError("a diff holds NaN or Inf")
    codes = np.rint((np.clip(values, layout.lo, layout.hi) - layout.lo) / layout.scale)
    weighted: U32Array = (np.clip(codes, 0, CODE_MAX).astype(np.uint32) * np.uint32(data_size)).astype(np.uint32)
    return weighted


def split_words(layout: RingLayout, words: U32Array) -> list[tuple[str, npt.NDArray[np.int8], float, float]]:
    """The compress_feature_map of a masked upload: per tensor its words as little-endian bytes, and the grid."""
    le = np.ascontiguousarray(words, dtype="<u4")
    bounds = layout.bounds()
    return [(name, le[bounds[i]:bounds[i + 1]].view(np.int8), layout.lo, layout.hi)
            for i, name in enumerate(layout.names)]


def verify_words(layout: RingLayout, names: Sequence[str],
                 tensors: Sequence[tuple[str, npt.ArrayLike, float, float]]) -> U32Array | str:
    """The K masked words of an upload, or why it is refused."""
    if tuple(names) != layout.names:
        return f"name_vec must list the model's {len(layout.names)} aggregated tensors in model order"
    if tuple(t[0] for t in tensors) != layout.names:
        return "compress_feature_map must follow name_vec"
    bounds = layout.bounds()
    parts = []
    for i, (name, data, lo, hi) in enumerate(tensors):
        if float(np.float32(lo)) != layout.lo or float(np.float32(hi)) != layout.hi:
            return f"tensor {name}: min_val/max_val are not the announced grid [{layout.lo}, {layout.hi}]"
        raw = np.asarray(data).view(np.uint8).reshape(-1)
        expected = 4 * int(bounds[i + 1] - bounds[i])
        if raw.size != expected:
            return f"tensor {name}: {raw.size} bytes, the kept set needs {expected} (4 per kept value)"
        parts.append(raw)
    return np.concatenate(parts).view("<u4").astype(np.uint32) if parts else np.zeros(0, np.uint32)


def add_limbs(limb_sums: F32Array, words: U32Array) -> None:
    """limb_sums (4·K float32: limb j of word i at j·K + i) += the byte limbs of `words`."""
    k = words.size
    if limb_sums.size != LIMBS * k:
        raise ValueError(f"limb sums of {limb_sums.size} values for {k} words")
    view = limb_sums.reshape(LIMBS, k)
    for j in range(LIMBS):
        view[j] += ((words >> np.uint32(8 * j)) & np.uint32(0xFF)).astype(np.float32)


def ring_sum(limb_sums: F32Array) -> U32Array:
    """Σ words mod 2^32 from the limb sums (exact while every limb sum is an integer below 2^24)."""
    view = np.asarray(limb_sums, np.float32).reshape(LIMBS, -1)
    if view.size and (not np.all(view == np.rint(view)) or view.max() >= 2**24 or view.min() < 0):
        raise ValueError("limb sums are not exact non-negative integers below 2^24")
    total = np.zeros(view.shape[1], np.uint64)
    for j in range(LIMBS):
        total += view[j].astype(np.uint64) << np.uint64(8 * j)
    return (total & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def decode(layout: RingLayout, unmasked: U32Array, total_data_size: int,
           latest: Mapping[str, npt.ArrayLike]) -> dict[str, F32Array]:
    """Σ n_u·w_u per tensor: Σn·w_latest everywhere plus scale·S + Σn·lo on the kept coordinates."""
    if not ring_capacity_ok(total_data_size):
        raise ValueError(f"Σn = {total_data_size}: Σn·{CODE_MAX} does not fit the 2^32 ring")
    kept_sum = layout.scale * unmasked.astype(np.float64) + total_data_size * layout.lo
    bounds = layout.bounds()
    kept = layout.kept()
    out: dict[str, F32Array] = {}
    offset = 0
    for i, name in enumerate(layout.names):
        acc = np.asarray(latest[name], np.float64).reshape(-1) * total_data_size
        acc[kept[bounds[i]:bounds[i + 1]] - offset] += kept_sum[bounds[i]:bounds[i + 1]]
        out[name] = acc.astype(np.float32)
        offset += layout.sizes[i]
    return out


def mask_words(words: U32Array, seeds: Sequence[tuple[bytes, bytes, float]],
               pairs: Sequence[tuple[bytes, bytes, bytes, bytes, float]], threads: int = 0) -> U32Array:
    """A masked copy of `words` (the ring kernel, GIL released)."""
    out = np.array(words, dtype=np.uint32)
    _core.crypto.add_ring_masks(out, list(seeds), list(pairs), threads)
    return out
