"""SignDS r_est adaptation (spec §7.4, MindSpore signds.cc::SummarizeSignDS): every branch on constructed b̂ lists."""

from __future__ import annotations

import numpy as np
import pytest

from mindfed.privacy.signds_rate import (
    INITIAL_R_EST,
    SignDSState,
    adapt,
    majority_bit,
    parse_r_est,
    r_est_text,
    reconstruction_step,
    updatemodel_count,
)

NUM, LR = 20, 0.1  # 20 expected updaters: fewer than 0.05 × 20 = 1 b̂ (none at all) is the "old client" case


def test_no_b_hat_falls_back_to_the_global_learning_rate() -> None:
    # Prepare: a state far from the fallback, reached or not
    for state in (SignDSState(0.25, 0, 3), SignDSState(0.25, 1, 12)):
        # Execute
        after = adapt([], state, NUM, LR)
        # Assert: r_est = lr / 3 / num, stored as std::to_string writes it; the rest unchanged
        assert after.r_est_text == "0.001667"
        assert after.r_est == float(np.float32(0.001667))
        assert (after.is_reached, after.reach_count) == (state.is_reached, state.reach_count)


def test_one_b_hat_is_enough_to_leave_the_fallback() -> None:
    assert adapt(["0"], SignDSState(), NUM, LR).r_est_text == "0.000050"  # 1 is not < 0.05 × 20: ×5 branch


def test_majority_zero_not_reached_expands_r_est_by_five() -> None:
    state = SignDSState()
    for expect in ("0.000050", "0.000250", "0.001250"):
        state = adapt(["0"] * 7 + ["1"] * 3, state, NUM, LR)
        assert state.r_est_text == expect
        assert (state.is_reached, state.reach_count) == (0, 0)


def test_majority_one_counts_reaches_and_the_eleventh_sets_reached() -> None:
    # The count read before the increment must be >= 10: the 11th "within range" iteration sets reached.
    state = SignDSState(0.0005, 0, 0)
    for i in range(10):
        state = adapt(["1"] * 8 + ["0"] * 2, state, NUM, LR)
        assert (state.is_reached, state.reach_count, state.r_est_text) == (0, i + 1, "0.000500")
    state = adapt(["1"] * 8, state, NUM, LR)
    assert (state.is_reached, state.reach_count, state.r_est_text) == (1, 11, "0.000500")


def test_reached_and_majority_one_shrinks_r_est_by_one_and_a_half() -> None:
    state = adapt(["1"] * 9 + ["0"], SignDSState(0.0009, 1, 11), NUM, LR)
    assert state.r_est_text == "0.000600"
    assert (state.is_reached, state.reach_count) == (1, 11)
    assert adapt(["0"] * 9, state, NUM, LR) == state  # reached and majority 0: nothing moves


def test_randomized_response_is_debiased_before_the_majority() -> None:
    # p = e^5/(1+e^5) ≈ 0.9933: real1 = (c1 + n(p−1)) / (2p−1); 6 ones of 10 → real1 ≈ 6.03 > real0 ≈ 3.97
    assert majority_bit(["1"] * 6 + ["0"] * 4) == 1
    assert majority_bit(["1"] * 5 + ["0"] * 5) == 0  # a tie is 0 (real1 > real0 is strict)
    assert majority_bit(["1"] * 4 + ["0"] * 6 + ["x", ""]) == 0  # values other than "0"/"1" are not counted
    assert majority_bit([]) == 0


def test_r_est_text_is_mindspores_six_decimals() -> None:
    assert r_est_text(INITIAL_R_EST) == "0.000010"
    assert r_est_text(4e-7) == "0.000000"  # MindSpore's quantisation: such an r_est is stored as 0
    assert parse_r_est(None) == INITIAL_R_EST == float(np.float32(1e-5))
    assert parse_r_est("junk") == INITIAL_R_EST
    assert parse_r_est("0.016667") == float(np.float32(0.016667))


@pytest.mark.parametrize(("ratio", "threshold", "count"), [(1.0, 4, 4), (0.9, 3, 2), (0.1, 5, 0)])
def test_updatemodel_count_truncates_as_size_t(ratio: float, threshold: int, count: int) -> None:
    assert updatemodel_count(ratio, threshold) == count


def test_zero_expected_updaters_skips_the_fallback() -> None:
    # CheckOldVersion returns false for updatemodel_num 0; an empty list then has majority 0: ×5
    assert adapt([], SignDSState(), 0, LR).r_est_text == "0.000050"


def test_reconstruction_step_is_float32_left_to_right() -> None:
    expect = np.float32(3.0) * (np.float32(0.9) * np.float32(3)) * np.float32(1e-5) * np.float32(-1)
    assert reconstruction_step(float(np.float32(1e-5)), 0.9, 3, -1) == float(expect)
    assert reconstruction_step(0.0625, 1.0, 4, 1) == 0.75
