"""The device side of secure compressed uploads (mindfed-only; codec in secagg/ring.py, docs/compression.md).

startFLJob announces them with upload_compress_type SECURE_SPARSE_QUANT, the rate and the grid bound B
(`upload_quant_bound`). The device then uploads no float: its difference to the received model, on the iteration's
shared kept set, quantised on the grid [-B, B], times its data size, masked in Z/2^32 by its PwSession.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mindfed.client.secagg import PwSession
from mindfed.errors import ProtocolError
from mindfed.protocol.codes import CompressType
from mindfed.protocol.views import ResponseFLJobView
from mindfed.secagg import ring

RingTensor = tuple[str, npt.NDArray[np.int8], float, float]


@dataclass(frozen=True, slots=True)
class SecureUpload:
    """What updateModel sends: per tensor (name, its masked words as bytes, lo, hi), in name_vec order.

    Attributes:
        tensors: the compress_feature_map entries.
        rate: upload_sparse_rate, sent back as announced.
    """

    tensors: list[RingTensor]
    rate: float


@dataclass(frozen=True, slots=True)
class SecureCompression:
    """SECURE_SPARSE_QUANT as startFLJob announced it.

    Attributes:
        layout: the iteration's kept set over every received tensor (startFLJob order) and the grid.
        received: the weights the device received (w_old).
        data_size: the device's data size n.
    """

    layout: ring.RingLayout
    received: Mapping[str, np.ndarray]
    data_size: int

    @classmethod
    def announced(cls, job: ResponseFLJobView, received: Mapping[str, np.ndarray], data_size: int
                  ) -> SecureCompression | None:
        """The secure compression `job` asks for, or None when it asks for none.

        Raises:
            ProtocolError: the announcement has no usable grid bound.
        """
        if job.upload_compress_type != int(CompressType.SECURE_SPARSE_QUANT):
            return None
        bound = job.upload_quant_bound
        if not (math.isfinite(bound) and bound > 0):
            raise ProtocolError(f"startFLJob asks for secure compressed uploads with grid bound {bound}")
        sizes = {name: int(np.size(value)) for name, value in received.items()}
        return cls(ring.RingLayout.of(sizes, list(received), job.upload_sparse_rate, job.iteration, bound),
                   received, data_size)

    def encode(self, trained: Mapping[str, np.ndarray], pw: PwSession) -> SecureUpload:
        """The masked upload of the trained weights (a tensor not trained uploads a zero difference).

        Raises:
            ValueError: a trained weight is NaN or infinite.
        """
        diffs = {name: (np.asarray(trained[name], np.float32).reshape(-1) if name in trained else base.reshape(-1))
                 - base.reshape(-1)
                 for name, base in ((n, np.asarray(v, np.float32)) for n, v in self.received.items())}
        words = ring.quantize_codes(self.layout, diffs, self.data_size)
        return SecureUpload(ring.split_words(self.layout, pw.mask_ring(words)), self.layout.rate)
