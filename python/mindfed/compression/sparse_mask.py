"""The seeded sparse mask of DIFF_SPARSE_QUANT: which of D coordinates a client uploads."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from mindfed import _core


def kept_count(d: int, rate: float) -> int:
    """K = (int)((float32)d * (float32)rate), as the Java client and MindSpore server compute it.

    Raises:
        ValueError: rate outside (0, 1], or d outside [0, 2**31).
    """
    return int(_core.compression.kept_count(d, rate))


def sparse_indices(d: int, rate: float, iteration: int) -> npt.NDArray[np.int32]:
    """Ascending positions (int32) of the K coordinates kept in iteration `iteration`.

    The mask depends only on (d, rate as float32, iteration), so the result is cached (it is
    shared by every client of an iteration) and returned read-only.

    Args:
        d: Total number of floats over all uploaded tensors, concatenated in name_vec order.
        rate: upload_sparse_rate; rounded to float32 as in the FlatBuffers field.
        iteration: The seed (a 32-bit signed int).

    Raises:
        ValueError: rate outside (0, 1], or d outside [0, 2**31).
        TypeError: iteration does not fit a 32-bit signed int.
    """
    return _cached_indices(int(d), float(np.float32(rate)), int(iteration))


@functools.lru_cache(maxsize=8)
def _cached_indices(d: int, rate: float, iteration: int) -> npt.NDArray[np.int32]:
    indices: npt.NDArray[np.int32] = _core.compression.sparse_indices(d, rate, iteration)
    indices.flags.writeable = False
    return indices
