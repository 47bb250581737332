"""Adaptive synchronisation frequency (`sync_type="adaptive"`), MindSpore's gradient-consistency heuristic
(`_fl_manager.py`, spec §11.2) with its defaults.

After every window the change of each weight over it is compared with the change of its magnitude: when the
exponential averages of both agree less and less (the consistency rate stops reaching a new minimum for longer than
the observation window), the workers' updates diverge and the window is shortened by `frequency_increase_ratio`.
MindSpore feeds it the sum over all workers (the global model's change times the number of workers, and the server's
aggregate of every worker's |change|); a worker here sees its own change, which gives the same rate for one worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULTS: dict[str, float | int] = {"min_consistent_rate": 1.1, "min_consistent_rate_at_round": 0, "ema_alpha": 0.5,
                                    "observation_window_size": 5, "frequency_increase_ratio": 2,
                                    "unchanged_round": 0}


def _check(kwargs: Mapping[str, object]) -> dict[str, float | int]:
    unknown = sorted(set(kwargs) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown adaptive sync option(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    values = {**DEFAULTS, **kwargs}
    rules: dict[str, tuple[type, Callable[[Any], bool], str]] = {
        "min_consistent_rate": (float, lambda v: v >= 0.0, ">= 0.0"),
        "min_consistent_rate_at_round": (int, lambda v: v >= 0, ">= 0"),
        "ema_alpha": (float, lambda v: 0.0 < v < 1.0, "in (0.0, 1.0)"),
        "observation_window_size": (int, lambda v: v > 0, "> 0"),
        "frequency_increase_ratio": (int, lambda v: v > 0, "> 0"),
        "unchanged_round": (int, lambda v: v >= 0, ">= 0")}
    out: dict[str, float | int] = {}
    for name, (kind, ok, text) in rules.items():
        value = values[name]
        wrong_kind = kind is int and not isinstance(value, int)
        if isinstance(value, bool) or not isinstance(value, int | float) or wrong_kind:
            raise TypeError(f"{name} must be {kind.__name__}, got {type(value).__name__}")
        if not ok(value):
            raise ValueError(f"{name} must be {text}, got {value}")
        out[name] = kind(value)
    return out


@dataclass
class AdaptiveSync:
    """The sync frequency and the statistics that move it. Create with `AdaptiveSync.create(frequency, **kwargs)`."""

    sync_frequency: int
    min_consistent_rate: float
    min_consistent_rate_at_round: int
    ema_alpha: float
    observation_window_size: int
    frequency_increase_ratio: int
    unchanged_round: int
    round_id: int = 0
    _grads_ema: dict[str, np.ndarray] = field(default_factory=dict)
    _abs_grads_ema: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def create(cls, sync_frequency: int, **kwargs: object) -> AdaptiveSync:
        """Raises TypeError / ValueError naming a bad option (MindSpore's validator ranges)."""
        values = _check(kwargs)
        return cls(sync_frequency, float(values["min_consistent_rate"]), int(values["min_consistent_rate_at_round"]),
                   float(values["ema_alpha"]), int(values["observation_window_size"]),
                   int(values["frequency_increase_ratio"]), int(values["unchanged_round"]))

    def consistency(self, delta: Mapping[str, np.ndarray], abs_delta: Mapping[str, np.ndarray]) -> float:
        """Fold one window's change (and |change|) into the averages; the mean consistency rate over all weights."""
        alpha, total, size = self.ema_alpha, 0.0, 0
        for name, grad in delta.items():
            g = np.asarray(grad, np.float64)
            a = np.asarray(abs_delta[name], np.float64)
            ema = self._grads_ema.get(name, np.zeros_like(g))
            abs_ema = self._abs_grads_ema.get(name, np.zeros_like(a))
            ema = alpha * ema + (1 - alpha) * g
            abs_ema = alpha * abs_ema + (1 - alpha) * a
            self._grads_ema[name], self._abs_grads_ema[name] = ema, abs_ema
            base = np.where(abs_ema == 0, 1.0, abs_ema)
            total += float(np.sum(np.abs(ema) / base))
            size += g.size
        return total / size if size else 0.0

    def after_window(self, delta: Mapping[str, np.ndarray], abs_delta: Mapping[str, np.ndarray]) -> int:
        """The sync frequency for the next window, given this window's change per weight."""
        rate = self.consistency(delta, abs_delta)
        if self.min_consistent_rate > rate:
            self.min_consistent_rate, self.min_consistent_rate_at_round = rate, self.round_id
        elif (self.round_id - self.min_consistent_rate_at_round > self.observation_window_size
              and self.sync_frequency > 1 and self.round_id > self.unchanged_round):
            ratio = self.frequency_increase_ratio
            self.sync_frequency = (self.sync_frequency + ratio - 1) // ratio
            self.min_consistent_rate, self.min_consistent_rate_at_round = 1.1, self.round_id
            self.observation_window_size *= ratio
            self._grads_ema.clear()
            self._abs_grads_ema.clear()
        self.round_id += 1
        return self.sync_frequency
