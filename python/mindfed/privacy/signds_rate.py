"""SignDS' per-iteration adaptation of r_est (spec §7.4), written as MindSpore's `signds.cc::SummarizeSignDS` does it.

Pure math, so every branch is testable without Redis; cache/signds.py runs it once per iteration, atomically.
Arithmetic is float32 as in the C++ (`float r_est`), and r_est is kept as the text MindSpore stores
(`std::to_string(float)`: six decimals). That quantisation is MindSpore's and kept on purpose: the value devices see
in DSParams and the one the server reconstructs with must be the same float, on every server.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

INITIAL_R_EST = float(np.float32(1e-5))  # kSignInitREst, the value used while Redis holds none
REACHED_THRESHOLD = 10  # kSignReachedThreshold: reach counts before the range counts as reached
EXPANSION = np.float32(5)  # kSignExpansionFactor
REDUCTION = np.float32(1.5)  # kSignReductionFactor
RR_EPS = 5.0  # kSignRREps: the randomized-response budget of b̂
OLD_RATIO_UPPER = np.float32(0.05)  # kSignOldRatioUpper: fewer b̂ than this share of updaters → "old clients"
GLOBAL_LR_RATIO = np.float32(3.0)  # kSignDSGlobalLRRatioOf{Not,}Reached (both 3)
B_HAT_VALUES = ("0", "1")


@dataclass(frozen=True, slots=True)
class SignDSState:
    """The instance's SignDS state between iterations.

    Attributes:
        r_est: The estimated update magnitude, a float32 value exactly as parsed from its stored text.
        is_reached: 1 once the magnitude range has been reached (then r_est only shrinks), else 0.
        reach_count: Iterations whose majority b̂ said "within range" while not yet reached.
    """

    r_est: float = INITIAL_R_EST
    is_reached: int = 0
    reach_count: int = 0

    @property
    def r_est_text(self) -> str:
        return r_est_text(self.r_est)


def r_est_text(value: float) -> str:
    """`std::to_string(float)`: the float widened to double, printed with six decimals."""
    return f"{float(np.float32(value)):f}"


def parse_r_est(text: str | None) -> float:
    """r_est as `GetFloat` reads it back (strtof of the stored text), INITIAL_R_EST when absent or unreadable."""
    if text is None:
        return INITIAL_R_EST
    try:
        value = float(np.float32(text))
    except ValueError:
        return INITIAL_R_EST
    return value if math.isfinite(value) else INITIAL_R_EST


def majority_bit(b_hats: Sequence[str]) -> int:
    """The debiased majority of randomized-response bits (`ComputRandomResponseB`); other values are not counted."""
    count_0 = sum(1 for b in b_hats if b == "0")
    count_1 = sum(1 for b in b_hats if b == "1")
    keep = np.float32(math.exp(RR_EPS) / (1 + math.exp(RR_EPS)))
    one = np.float32(1)
    real_1 = (np.float32(count_1) + np.float32(count_1 + count_0) * (keep - one)) / (np.float32(2.0) * keep - one)
    real_0 = np.float32(count_0 + count_1) - real_1
    return 1 if real_1 > real_0 else 0


def updatemodel_count(update_model_ratio: float, start_fl_job_threshold: int) -> int:
    """`size_t updatemodel_num` of SummarizeSignDS: the float product truncated (the reconstruction keeps the float)."""
    return int(np.float32(update_model_ratio) * np.float32(start_fl_job_threshold))


def adapt(b_hats: Sequence[str], state: SignDSState, updatemodel_num: int, sign_global_lr: float) -> SignDSState:
    """The state after one iteration whose devices sent `b_hats` (SummarizeSignDS).

    Args:
        b_hats: The iteration's b̂ values ("0"/"1").
        state: The state the iteration ran with.
        updatemodel_num: `updatemodel_count(...)` of the configuration.
        sign_global_lr: `encrypt.signds.sign_global_lr`.

    Returns:
        The next state. r_est goes through its stored text whenever MindSpore writes it.
    """
    if updatemodel_num > 0 and np.float32(len(b_hats)) < OLD_RATIO_UPPER * np.float32(updatemodel_num):
        # "Old clients" (no b̂) dominate: fall back to the global learning rate (CheckOldVersion).
        fallback = np.float32(sign_global_lr) / GLOBAL_LR_RATIO / np.float32(updatemodel_num)
        return SignDSState(parse_r_est(r_est_text(float(fallback))), state.is_reached, state.reach_count)
    bit = majority_bit(b_hats)
    r_est, is_reached, reach_count = np.float32(state.r_est), state.is_reached, state.reach_count
    if is_reached == 0 and bit == 0:
        r_est = r_est * EXPANSION
    elif is_reached == 0 and bit == 1:
        if reach_count >= REACHED_THRESHOLD:  # the count read before the increment, as the C++
            is_reached = 1
        reach_count += 1
    elif is_reached == 1 and bit == 1:
        r_est = r_est / REDUCTION
    return SignDSState(parse_r_est(r_est_text(float(r_est))), is_reached, reach_count)


def reconstruction_step(state_r_est: float, update_model_ratio: float, start_fl_job_threshold: int,
                        sign: int) -> float:
    """g = 3 × (update_model_ratio × start_fl_job_threshold) × r_est × sign, in float32 left to right
    (`ParseSignDSFeatureMap`; both reached and not-reached use the ratio 3)."""
    updatemodel_num = np.float32(update_model_ratio) * np.float32(start_fl_job_threshold)
    return float(GLOBAL_LR_RATIO * updatemodel_num * np.float32(state_r_est) * np.float32(sign))
