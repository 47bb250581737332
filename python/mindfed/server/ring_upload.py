"""Secure compressed updateModel uploads (SECURE_SPARSE_QUANT, mindfed-only; codec in secagg/ring.py).

Under PW_ENCRYPT with `compression.secure_compressed_upload`, every device uploads its quantised sparse difference
masked in the ring Z/2^32. The server never sees a code: each upload's K masked words are folded, as 4 byte limbs,
into the accumulator slot RING_SLOT (so cross-server partial sums, checkpoints and the durable-log replay carry them
like any float update), and only the aggregator, after the unmasking round, turns the ring sum into Σ n·w.

Shared by the updateModel round and the aggregator's replay of logged bodies (server/combine.py): both verify with
the iteration's layout (kept set, grid) and add exactly the same limbs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mindfed.compression.quantize import F32Array
from mindfed.config import FLConfig
from mindfed.config.enums import EncryptType
from mindfed.model.weights import ModelWeights
from mindfed.protocol.codes import CompressType
from mindfed.protocol.views import RequestUpdateModelView
from mindfed.secagg import ring
from mindfed.server.state import ServerState


def ring_mode(cfg: FLConfig) -> bool:
    """Whether this job takes secure compressed uploads (the config refuses the flag outside PW_ENCRYPT)."""
    return cfg.compression.secure_compressed_upload and cfg.encrypt.encrypt_train_type == EncryptType.PW_ENCRYPT


def accumulator_sizes(cfg: FLConfig, model: ModelWeights) -> dict[str, int]:
    """The accumulator's slots: the aggregated tensors, plus RING_SLOT (4·K limb sums) in ring mode.

    Raises:
        ValueError: the model has a tensor of the reserved name RING_SLOT.
    """
    sizes = {name: model.sizes[name] for name in model.aggregated_names}
    if ring_mode(cfg):
        if ring.RING_SLOT in model.sizes:
            raise ValueError(f"a model tensor is named {ring.RING_SLOT!r}, the slot of secure compressed uploads")
        sizes[ring.RING_SLOT] = ring.slot_size(model.sizes, cfg.compression.upload_sparse_rate)
    return sizes


@dataclass(frozen=True, slots=True)
class RingContext:
    """What verifying and decoding the secure compressed uploads of one iteration needs.

    Attributes:
        layout: The iteration's kept set over all the model's tensors in name order, and the grid [-B, B].
        latest: The model the devices of this iteration started from (w_latest).
        aggregated: Names this server sums; the others are decoded and dropped.
    """

    layout: ring.RingLayout
    latest: ModelWeights
    aggregated: frozenset[str]

    @classmethod
    def of(cls, state: ServerState, iteration: int) -> RingContext:
        compress = state.config.compression
        latest = state.models.get(iteration - 1) or state.models.latest  # what startFLJob handed out
        layout = ring.RingLayout.of(latest.sizes, latest.names, compress.upload_sparse_rate, iteration,
                                    compress.secure_quant_bound)
        return cls(layout, latest, frozenset(latest.aggregated_names))

    def verify(self, req: RequestUpdateModelView) -> RingUpload | str:
        """The upload's masked words, or why it is refused (answered RequestError with that reason)."""
        if req.upload_compress_type != int(CompressType.SECURE_SPARSE_QUANT):
            return (f"this job takes secure compressed uploads only (upload_compress_type "
                    f"{int(CompressType.SECURE_SPARSE_QUANT)}, compression.secure_compressed_upload), got "
                    f"upload_compress_type {req.upload_compress_type}")
        if float(np.float32(req.upload_sparse_rate)) != self.layout.rate:
            return f"upload_sparse_rate {req.upload_sparse_rate} is not the announced {self.layout.rate}"
        words = ring.verify_words(self.layout, req.name_vec,
                                  [(t.name, t.data, t.min_val, t.max_val) for t in req.compress_feature_map])
        return words if isinstance(words, str) else RingUpload(words)

    def decode(self, unmasked: ring.U32Array, total_data_size: int) -> dict[str, F32Array]:
        """Σ n_u·w_u of every aggregated tensor from the unmasked ring sum of the uploads of Σn = total_data_size."""
        decoded = ring.decode(self.layout, unmasked, total_data_size, self.latest)
        return {name: values for name, values in decoded.items() if name in self.aggregated}


@dataclass(frozen=True, slots=True)
class RingUpload:
    """A verified secure compressed upload: its K masked words (uint32, a copy owned here)."""

    words: ring.U32Array
    aggregated: tuple[str, ...] = (ring.RING_SLOT,)

    def __len__(self) -> int:
        return 1  # never "Feature map is empty": the upload covers the whole model

    def decode_into(self, sums: Mapping[str, F32Array], data_size: int) -> None:
        """`sums[RING_SLOT]` += the byte limbs of the words (any thread). The data size is already in the words."""
        del data_size  # n·c was multiplied on the device, under the mask
        ring.add_limbs(sums[ring.RING_SLOT], self.words)
