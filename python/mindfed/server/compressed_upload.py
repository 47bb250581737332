"""Compressed updateModel uploads (DIFF_SPARSE_QUANT): verified per spec §3.5 step 7, decoded per spec §8.1.

Shared by the updateModel round (decode on the accumulator's worker thread) and the aggregator's replay of
logged bodies (server/combine.py), so both add exactly `x' + data_size × w_latest` for the same upload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mindfed import compression
from mindfed.compression.quantize import F32Array
from mindfed.config.enums import UploadCompressType
from mindfed.model.weights import ModelWeights
from mindfed.protocol.codes import CompressType
from mindfed.protocol.views import RequestUpdateModelView
from mindfed.server.state import ServerState

MAX_MASK_LENGTH = 2**31 - 1  # the Java client counts coordinates in an int


@dataclass(frozen=True, slots=True)
class CompressedContext:
    """What verifying and decoding a compressed upload of one iteration needs.

    Attributes:
        enabled: Whether the server is configured for DIFF_SPARSE_QUANT uploads.
        rate: The configured upload_sparse_rate, as the float32 the device must send.
        iteration: The iteration (the mask seed).
        latest: The model the devices of this iteration started from (w_latest of spec §8.1).
        aggregated: Names this server sums; others are decoded into scratch and dropped.
    """

    enabled: bool
    rate: float
    iteration: int
    latest: ModelWeights
    aggregated: frozenset[str]

    @classmethod
    def of(cls, state: ServerState, iteration: int) -> CompressedContext:
        compress = state.config.compression
        latest = state.models.get(iteration - 1) or state.models.latest  # what startFLJob handed out
        return cls(compress.upload_compress_type == UploadCompressType.DIFF_SPARSE_QUANT,
                   float(np.float32(compress.upload_sparse_rate)), iteration, latest,
                   frozenset(state.accumulator.sizes))

    def verify(self, req: RequestUpdateModelView) -> CompressedUpload | None:
        """The upload if it passes step 7 of spec §3.5, else None ("Verify model feature map failed")."""
        if not self.enabled or req.upload_compress_type != int(CompressType.DIFF_SPARSE_QUANT):
            return None
        if float(np.float32(req.upload_sparse_rate)) != self.rate:  # must equal the configured float exactly
            return None
        names = tuple(req.name_vec)
        tensors = tuple(compression.CompressedTensor(t.name, t.data, t.min_val, t.max_val)
                        for t in req.compress_feature_map)
        sizes = self.latest.sizes
        if not names or not tensors or len(set(names)) != len(names):
            return None
        if tuple(t.name for t in tensors) != names or any(name not in sizes for name in names):
            return None
        total = sum(sizes[name] for name in names)
        if total > MAX_MASK_LENGTH:
            return None
        kept = compression.sparse_indices(total, self.rate, self.iteration)
        bounds = np.searchsorted(kept, np.cumsum([0, *(sizes[name] for name in names)]))
        for i, tensor in enumerate(tensors):
            if not _tensor_ok(tensor, int(bounds[i + 1] - bounds[i])):
                return None
        return CompressedUpload(self, names, tensors, tuple(n for n in names if n in self.aggregated))


@dataclass(frozen=True, slots=True)
class CompressedUpload:
    """A verified compressed upload. Its length is the number of aggregated tensors in it (0: nothing to sum).

    The codes are views into the request body: keep the body alive until `decode_into` has run.
    """

    context: CompressedContext
    names: tuple[str, ...]
    tensors: tuple[compression.CompressedTensor, ...]
    aggregated: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.aggregated)

    def decode_into(self, sums: Mapping[str, F32Array], data_size: int) -> None:
        """`sums[name] += x' + data_size × w_latest[name]` for every aggregated name (any thread; GIL released)."""
        latest = self.context.latest
        acc = {name: sums[name] if name in self.context.aggregated else np.zeros(latest.sizes[name], np.float32)
               for name in self.names}
        compression.decode_into(acc, self.tensors, self.names, self.context.rate, self.context.iteration,
                                data_size, {name: np.ascontiguousarray(latest.flat(name), np.float32)
                                            for name in self.names})


def _tensor_ok(tensor: compression.CompressedTensor, expected: int) -> bool:
    """Length equals what the mask keeps; for a non-empty tensor finite min <= max (spec §3.5 step 7)."""
    if tensor.codes.size != expected:
        return False
    if expected == 0:
        return True  # the Java client sends FLT_MAX / -FLT_MAX for a tensor with no kept values
    lo, hi = np.float32(tensor.min_val), np.float32(tensor.max_val)
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(lo) and np.isfinite(hi) and lo <= hi and np.isfinite(hi - lo))
