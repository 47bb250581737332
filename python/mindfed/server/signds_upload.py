"""SignDS updateModel uploads (spec §7.4): verified per spec §3.5 step 7, reconstructed as MindSpore's
`update_model_kernel.cc::ParseSignDSFeatureMap` does.

A device sends no weights, only `sign` (±1), the sorted flat `index_array` of the dimensions it selects over the
concatenation of the tensors it names (request order), and the names. The server adds
`g = 3 × (update_model_ratio × start_fl_job_threshold) × r_est × sign` at those dimensions of the latest global model
and multiplies by the device's data size, so the upload folds into the ordinary FedAvg sums as `(w_latest + g·1_S)·n`.
Shared by the updateModel round and the aggregator's replay of logged bodies (server/combine.py): both need the
iteration's r_est and w_latest, which `SignDSContext.of` takes from the iteration's Redis snapshot (cache/signds.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mindfed import _core
from mindfed.cache.signds import SignDSCache, SignDSParams
from mindfed.compression.quantize import F32Array
from mindfed.config.enums import EncryptType
from mindfed.model.weights import ModelWeights
from mindfed.privacy.signds_rate import reconstruction_step, updatemodel_count
from mindfed.protocol.views import RequestUpdateModelView
from mindfed.server.state import ServerState

MAX_INDEX_ARRAY = 100  # VerifySignDSFeatureMap: 1..100 entries (sign_dim_out is at most 50)
KEEP_ITERATIONS = 3  # parameters cached per server: the current iteration and the ones a replay may still need


def is_signds(state: ServerState) -> bool:
    return state.config.encrypt.encrypt_train_type == EncryptType.SIGNDS


async def iteration_params(state: ServerState, iteration: int) -> SignDSParams:
    """SignDS parameters of `iteration`, from this server's cache or Redis (which adapts r_est once if needed)."""
    cached = state.signds.get(iteration)
    if cached is not None:
        return cached
    cfg = state.config
    params = await SignDSCache(state.store, state.instance, state.ttl).params(
        iteration, updatemodel_count(cfg.round.update_model_ratio, cfg.round.start_fl_job_threshold),
        cfg.encrypt.signds.sign_global_lr)
    state.signds[iteration] = params
    for old in [i for i in state.signds if i <= iteration - KEEP_ITERATIONS]:
        del state.signds[old]
    return params


@dataclass(frozen=True, slots=True)
class SignDSContext:
    """What verifying and reconstructing a SignDS upload of one iteration needs.

    Attributes:
        params: The iteration's r_est and is_reached.
        update_model_ratio, start_fl_job_threshold: The round config entering g.
        latest: The model the devices of this iteration started from (MindSpore's GetLatestModel).
        aggregated: Names this server sums; others are verified and dropped.
    """

    params: SignDSParams
    update_model_ratio: float
    start_fl_job_threshold: int
    latest: ModelWeights
    aggregated: frozenset[str]

    @classmethod
    async def of(cls, state: ServerState, iteration: int) -> SignDSContext:
        rnd = state.config.round
        latest = state.models.get(iteration - 1) or state.models.latest  # what startFLJob handed out
        return cls(await iteration_params(state, iteration), rnd.update_model_ratio, rnd.start_fl_job_threshold,
                   latest, frozenset(state.accumulator.sizes))

    def step(self, sign: int) -> float:
        """g for `sign`, float32 as the C++."""
        return reconstruction_step(self.params.r_est, self.update_model_ratio, self.start_fl_job_threshold, sign)

    def verify(self, req: RequestUpdateModelView) -> SignDSUpload | None:
        """The upload if it passes step 7 of spec §3.5, else None ("Verify model feature map failed").

        MindSpore checks the index_array's length (1..100) and then walks it against the flat model, silently
        skipping entries that are out of range, repeated or out of order; here such an array is refused: an honest
        device always sends it sorted, unique and in range, and a skipped entry would change the update unseen.
        """
        if req.sign == 0 or not req.has_index_array:
            return None
        indices = np.asarray(req.index_array, dtype=np.int64)
        if not 1 <= indices.size <= MAX_INDEX_ARRAY:
            return None
        names = tuple(t.name for t in req.feature_map)
        sizes = self.latest.sizes
        if len(set(names)) != len(names) or any(name not in sizes for name in names):
            return None
        if not names:
            return SignDSUpload(self, names, indices, req.sign, ())  # "Feature map is empty"
        total = sum(sizes[name] for name in names)
        if indices[0] < 0 or indices[-1] >= total or np.any(np.diff(indices) <= 0):
            return None
        upload = SignDSUpload(self, names, indices, req.sign, tuple(n for n in names if n in self.aggregated))
        return upload if upload.finite() else None


@dataclass(frozen=True, slots=True)
class SignDSUpload:
    """A verified SignDS upload. Its length is the number of aggregated tensors in it (0: nothing to sum).

    Attributes:
        context: The iteration's context.
        names: The tensors the device named, in request order (the index space is their concatenation).
        indices: The selected flat indices, sorted and unique (int64).
        sign: +1 or −1.
        aggregated: The names this server sums.
    """

    context: SignDSContext
    names: tuple[str, ...]
    indices: np.ndarray
    sign: int
    aggregated: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.aggregated)

    def _spans(self) -> list[tuple[str, np.ndarray]]:
        """(name, the selected indices local to that tensor) for every aggregated name."""
        sizes = self.context.latest.sizes
        bounds = np.cumsum([0, *(sizes[name] for name in self.names)])
        cut = np.searchsorted(self.indices, bounds)
        return [(name, self.indices[cut[i]:cut[i + 1]] - bounds[i]) for i, name in enumerate(self.names)
                if name in self.aggregated]

    def finite(self) -> bool:
        """Whether every reconstructed value is finite (MindSpore's verifyAggregationFeatureMap on the result)."""
        g = np.float32(self.context.step(self.sign))
        if not np.isfinite(g):
            return False
        with np.errstate(over="ignore", invalid="ignore"):
            return all(bool(np.isfinite(self._latest(name)[local] + g).all()) for name, local in self._spans())

    def _latest(self, name: str) -> np.ndarray:
        return np.ascontiguousarray(self.context.latest.flat(name), np.float32)

    def decode_into(self, sums: Mapping[str, F32Array], data_size: int) -> None:
        """`sums[name] += (w_latest + g at the selected indices) × data_size` for every aggregated name.

        One dense pass per tensor (the accumulate) and a handful of scalar fixes; at the selected dimensions the
        value added is MindSpore's float32 `(w + g) × n`, not `w×n + g×n`.
        """
        g = np.float32(self.context.step(self.sign))
        n = np.float32(data_size)
        for name, local in self._spans():
            acc, latest = sums[name], self._latest(name)
            before = acc[local]  # fancy indexing copies: the sums there before this update
            _core.agg.accumulate(acc, latest, float(data_size))
            with np.errstate(over="ignore", invalid="ignore"):
                acc[local] = before + (latest[local] + g) * n
