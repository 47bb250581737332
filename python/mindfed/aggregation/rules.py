"""How the combined sums of an iteration become the new model: FedAvg, FedProx, Scaffold, FedNova (spec §4.4, §11.2).

Every server folds what the clients upload (Σ upload, Σ data_size per tensor, accumulator.py) whatever the rule; the
rules differ only in what clients upload and in this last step, applied once by the aggregator (server/combine.py):

- FedAvg, FedProx: w = Σ(w_i·n_i) / Σn_i. FedProx's proximal term is client-side (worker/cross_silo.py).
- Scaffold: model tensors as FedAvg; each control variate `control.<name>` (uploaded as the unweighted Δc_i) becomes
  c = c_prev + Σ Δc_i / total_client_num (MindSpore's ScaffoldAllReduce plus the previous value, executor.cc).
- FedNova: clients upload Δ_i/τ_i = (w_i − w_global)/τ_i with data_size τ_i (their local steps), and
  w = w_prev + Στ_i · Σ(Δ_i/τ_i) / K², the paper's τ_eff·Σ p_i·Δ_i/τ_i with p_i = 1/K. K is the number of updates
  aggregated; MindSpore divides by (start_fl_job_threshold / update_model_ratio)² instead, which is the same K only
  while update_model_ratio is 1 (docs/cross-silo.md).

A tensor nobody uploaded keeps its previous value under every rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mindfed import _core
from mindfed.config import FLConfig
from mindfed.config.enums import AggregationType, ServerMode

F32Array = npt.NDArray[np.float32]
CONTROL_PREFIX = "control."  # MindSpore's kControlPrefix: Scaffold's control variate of tensor <name>
SUPPORTED_RULES = frozenset({AggregationType.FED_AVG, AggregationType.FED_PROX, AggregationType.SCAFFOLD,
                             AggregationType.FED_NOVA})


def is_control(name: str) -> bool:
    """Whether `name` is a Scaffold control variate (never served as model weights)."""
    return name.startswith(CONTROL_PREFIX)


@dataclass(frozen=True, slots=True)
class AggregationRule:
    """The rule of one job.

    Attributes:
        kind: the aggregation type; FedAvg outside CLOUD_TRAINING (the YAML key is only meaningful there).
        total_client_num: Scaffold's divisor (`aggregation.total_client_num`, >= 1).
    """

    kind: AggregationType = AggregationType.FED_AVG
    total_client_num: int = 1

    @classmethod
    def of(cls, cfg: FLConfig) -> AggregationRule:
        if cfg.server_mode != ServerMode.CLOUD_TRAINING:
            return cls()
        return cls(cfg.aggregation.aggregation_type, cfg.aggregation.total_client_num)

    @property
    def scaffold(self) -> bool:
        return self.kind == AggregationType.SCAFFOLD

    def finish(self, name: str, total: F32Array, data_size: int, updates: int, previous: F32Array) -> bool:
        """Turn the sum of one tensor into its new value, in place.

        Args:
            name: the tensor's name (`control.*` are Scaffold's control variates).
            total: the flat float32 sum of the uploads of `name` (C-contiguous, writeable); overwritten.
            data_size: Σ of the uploaders' data sizes for `name` (FedNova: Σ τ_i).
            updates: how many updates the iteration aggregated (FedNova's K).
            previous: the tensor's value in the previous model, flat float32.

        Returns:
            Whether `total` now holds the new value; False (nobody uploaded it) keeps `previous`.
        """
        if data_size <= 0:
            return False
        if self.scaffold and is_control(name):
            _core.agg.scale_into(total, 1.0 / self.total_client_num, total)
            _core.agg.accumulate(total, np.ascontiguousarray(previous), 1.0)
        elif self.kind == AggregationType.FED_NOVA:
            _core.agg.scale_into(total, data_size / float(max(updates, 1)) ** 2, total)
            _core.agg.accumulate(total, np.ascontiguousarray(previous), 1.0)
        else:
            _core.agg.scale_into(total, 1.0 / data_size, total)
        return True


def with_control_variates(tensors: dict[str, np.ndarray], require_aggr: dict[str, bool]
                          ) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """Scaffold: a zero `control.<name>` twin for every aggregated tensor that has none (MindSpore's FLServerJob
    adds them the same way), so the global control variates live, aggregate and checkpoint with the model."""
    out, flags = dict(tensors), dict(require_aggr)
    for name, value in tensors.items():
        twin = CONTROL_PREFIX + name
        if is_control(name) or not flags.get(name, True) or twin in out:
            continue
        out[twin] = np.zeros(np.shape(value), dtype=np.float32)
        flags[twin] = True
    return out, flags
