"""The reference of secure compressed uploads, from the formulas (not the codec): what the served model must be."""

from __future__ import annotations

import numpy as np

from mindfed.compression import sparse_indices
from mindfed.model.weights import ModelWeights

Update = tuple[dict[str, np.ndarray], int]  # (trained − received, flat per tensor; data size)


def quantised_fedavg(latest: ModelWeights, kept: list[Update], iteration: int, rate: float, bound: float
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(FedAvg of the dequantised sparse updates, FedAvg of the same clipped sparse updates unquantised).

    Kept set sparse_indices(D, rate, iteration) over the name-ordered concatenation of all tensors; grid [-B, B] in
    255 levels, c = rint((clip(d) − lo) / scale); float64 throughout.
    """
    names = latest.names
    lo, hi = -float(np.float32(bound)), float(np.float32(bound))
    scale = (hi - lo) / 254
    index = sparse_indices(sum(latest.sizes.values()), float(np.float32(rate)), iteration)
    total = sum(n for _, n in kept)
    dequantised = np.zeros(sum(latest.sizes.values()))
    clipped = np.zeros_like(dequantised)
    for diff, n in kept:
        flat = np.concatenate([np.reshape(diff[k], -1) for k in names]).astype(np.float64)
        codes = np.rint((np.clip(flat[index], lo, hi) - lo) / scale)
        dequantised[index] += n * (lo + scale * codes)
        clipped[index] += n * np.clip(flat[index], lo, hi)
    base = np.concatenate([latest.flat(k) for k in names]).astype(np.float64)
    bounds = np.cumsum([0, *(latest.sizes[k] for k in names)])
    return ({k: (base + dequantised / total)[bounds[i]:bounds[i + 1]] for i, k in enumerate(names)},
            {k: (base + clipped / total)[bounds[i]:bounds[i + 1]] for i, k in enumerate(names)})
