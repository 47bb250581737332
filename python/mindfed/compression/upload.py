"""DIFF_SPARSE_QUANT uploads: device-side encode and server-side decode into the accumulators.

The device uploads, per tensor and in name_vec order, the quantised kept entries of
`w_new * n - w_old * n`; the server adds `decoded + n * w_latest` to its sums without ever
building a dense per-client copy (spec §8.1, §3.5 step 7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from mindfed import _core
from mindfed.compression.quantize import CompressedTensor, F32Array, quantize
from mindfed.compression.sparse_mask import sparse_indices
from mindfed.errors import ProtocolError


def upload_diff(new_times_n: npt.ArrayLike, old: npt.ArrayLike, data_size: int) -> F32Array:
    """`w_new·n − w_old·n` in float32, as the Java client computes it (new·n is the trained
    weights already multiplied by data_size, after any DP processing)."""
    new = np.asarray(new_times_n, dtype=np.float32)
    return new - np.asarray(old, dtype=np.float32) * np.float32(data_size)


def encode_upload(
    weights_diff_times_n: Mapping[str, npt.ArrayLike], names_order: Sequence[str], rate: float, iteration: int
) -> list[CompressedTensor]:
    """Device side: sparsify the concatenated diffs with the iteration's mask, quantise per tensor.

    Args:
        weights_diff_times_n: name -> `w_new·n − w_old·n` (see upload_diff); any shape.
        names_order: name_vec: the tensors to upload, in the order of the concatenation.
        rate: upload_sparse_rate from the startFLJob response.
        iteration: the iteration from the startFLJob response (the mask seed).

    Returns:
        One CompressedTensor per name, in names_order.

    Raises:
        ValueError: a diff holds NaN/Inf, a bad rate, or a name is missing.
    """
    flats = [np.ascontiguousarray(weights_diff_times_n[name], dtype=np.float32).reshape(-1) for name in names_order]
    sizes = [flat.size for flat in flats]
    kept = sparse_indices(sum(sizes), rate, iteration)
    bounds = np.searchsorted(kept, np.cumsum([0, *sizes]))
    result = []
    offset = 0
    for i, (name, flat) in enumerate(zip(names_order, flats, strict=True)):
        local = kept[bounds[i] : bounds[i + 1]] - offset
        result.append(CompressedTensor(name, *quantize(flat[local])))
        offset += flat.size
    return result


def decode_into(
    acc: Mapping[str, F32Array],
    compressed: Sequence[CompressedTensor],
    names_order: Sequence[str],
    rate: float,
    iteration: int,
    data_size: int,
    latest_model: Mapping[str, F32Array],
) -> None:
    """Server side: `acc[name] += decoded + data_size * latest_model[name]` for every uploaded tensor.

    Everything is checked before any accumulator changes, so a rejected upload leaves `acc`
    untouched. The caller checks `rate` against its configuration first (spec §3.5 step 7).

    Args:
        acc: name -> C-contiguous float32 accumulator (any shape), written in place.
        compressed: the request's compress_feature_map, in order.
        names_order: the request's name_vec.
        rate: the configured upload_sparse_rate.
        iteration: the current iteration (the mask seed).
        data_size: the client's data size from startFLJob.
        latest_model: name -> C-contiguous float32 weights of the latest global model.

    Raises:
        ProtocolError: empty name_vec, compressed entries not matching name_vec, a name not in
            the model, a wrong number of values for a tensor, or bad min/max (NaN, Inf, min > max).
        ValueError / TypeError: an accumulator missing, of another size or not C-contiguous float32.
    """
    if not names_order:
        raise ProtocolError("name_vec is empty")
    if [t.name for t in compressed] != list(names_order):
        raise ProtocolError(f"compress_feature_map names {[t.name for t in compressed]} differ from name_vec")
    missing = [name for name in names_order if name not in latest_model]
    if missing:
        raise ProtocolError(f"name_vec names weights not in the model: {missing}")
    sizes = [int(latest_model[name].size) for name in names_order]
    kept = sparse_indices(sum(sizes), rate, iteration)
    offsets = np.cumsum([0, *sizes])
    bounds = np.searchsorted(kept, offsets)
    for i, tensor in enumerate(compressed):
        _check_tensor(tensor, int(bounds[i + 1] - bounds[i]))
        if acc[tensor.name].size != sizes[i]:
            raise ValueError(f"accumulator {tensor.name} has {acc[tensor.name].size} elements, model has {sizes[i]}")
    for i, tensor in enumerate(compressed):
        _core.compression.decode_accumulate(
            acc[tensor.name],
            tensor.codes,
            tensor.min_val,
            tensor.max_val,
            kept[bounds[i] : bounds[i + 1]],
            int(offsets[i]),
            latest_model[tensor.name],
            data_size,
        )


def _check_tensor(tensor: CompressedTensor, expected: int) -> None:
    """The per-tensor checks of spec §3.5 step 7, raised as ProtocolError before any write."""
    if tensor.codes.size != expected:
        raise ProtocolError(f"{tensor.name}: {tensor.codes.size} compressed values, the mask keeps {expected}")
    if expected == 0:
        return  # the Java client sends FLT_MAX / -FLT_MAX for a tensor with no kept values
    lo, hi = np.float32(tensor.min_val), np.float32(tensor.max_val)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi and np.isfinite(hi - lo))
    if bad:
        raise ProtocolError(
            f"{tensor.name}: min_val {tensor.min_val} and max_val {tensor.max_val}; need finite min <= max"
        )
