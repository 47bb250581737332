"""8-bit min/max quantisation (QUANT downloads, and the values of DIFF_SPARSE_QUANT uploads)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from mindfed import _core

F32Array = npt.NDArray[np.float32]
I8Array = npt.NDArray[np.int8]


class CompressedTensor(NamedTuple):
    """One CompressFeatureMap: a tensor's int8 codes and the float32 min/max they decode with."""

    name: str
    codes: I8Array
    min_val: float
    max_val: float


def quantize(x: npt.ArrayLike) -> tuple[I8Array, float, float]:
    """Codes of float32 `x` (flattened) with min/max over all of it, as the Java client computes them.

    An empty x gives (empty, FLT_MAX, -FLT_MAX), what the Java client sends for no values.

    Raises:
        ValueError: x holds NaN or Inf, or max - min overflows float32.
    """
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    codes = np.empty(flat.size, np.int8)
    min_val, max_val = _core.compression.quantize_into(flat, codes)
    return codes, float(min_val), float(max_val)


def dequantize(codes: npt.ArrayLike, min_val: float, max_val: float) -> F32Array:
    """float32 values (q + 128) * scale + min of int8 `codes` (flattened)."""
    flat = np.ascontiguousarray(codes, dtype=np.int8).reshape(-1)
    out = np.empty(flat.size, np.float32)
    _core.compression.dequantize_into(flat, min_val, max_val, out)
    return out


def quantize_model(weights: Mapping[str, npt.ArrayLike]) -> list[CompressedTensor]:
    """QUANT download encode: every tensor quantised over its own full min/max, in mapping order."""
    return [CompressedTensor(name, *quantize(value)) for name, value in weights.items()]


def dequantize_model(compressed: Iterable[CompressedTensor]) -> dict[str, F32Array]:
    """QUANT download decode (device side): name -> flat float32 values."""
    return {t.name: dequantize(t.codes, t.min_val, t.max_val) for t in compressed}
