"""The RDP accountant against published values of TF-Privacy's own tests
(tensorflow/privacy, privacy/analysis/rdp_accountant_test.py: test_compute_rdp_scalar, test_compute_rdp_sequence,
test_compute_rdp_no_sampling, test_get_privacy_spent_check_target_delta)."""

from __future__ import annotations

import math

import pytest

from mindfed.privacy.rdp import compute_rdp, epsilon, epsilon_classic, rdp_step


def test_tf_privacy_compute_rdp_scalar() -> None:
    # rdp_accountant.compute_rdp(q=0.1, noise_multiplier=2, steps=10, orders=5) == 0.07737 (places=5)
    assert compute_rdp(0.1, 2.0, 10, [5])[0] == pytest.approx(0.07737, abs=1e-5)


def test_tf_privacy_compute_rdp_sequence_at_integer_orders() -> None:
    # compute_rdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, inf]) == [0.00065, 0.001085, 0.00218075, 0.023846,
    # 167.416307, inf]; the integer orders 5, 50, 100 are the ones this accountant computes
    assert compute_rdp(0.01, 2.5, 50, [5, 50, 100]) == pytest.approx([0.00218075, 0.023846, 167.416307], abs=1e-5)


def test_without_sampling_rdp_is_the_gaussian_mechanisms() -> None:
    # TF-Privacy: compute_rdp(1, 10, 1, 20) == 0.1  (α / (2z²))
    assert rdp_step(1.0, 10.0, 20) == 0.1
    assert rdp_step(0.0, 10.0, 20) == 0.0


def test_conversion_is_balle_et_al_2020_and_tighter_than_the_classic_one() -> None:
    # TF-Privacy test_get_privacy_spent_check_target_delta: constant RDP 1.1 over orders 2..32 picks order 32 and
    # ε = 1.1 + log(1 − 1/32) − (log(1e-5) + log(32)) / 31
    orders = list(range(2, 33))
    eps, order = epsilon([1.1] * len(orders), 1e-5, orders)
    assert order == 32
    assert eps == pytest.approx(1.1 + math.log(1 - 1 / 32) - (math.log(1e-5) + math.log(32)) / 31, abs=1e-12)
    rdp = compute_rdp(0.01, 1.1, 1000)
    assert epsilon(rdp, 1e-5)[0] < epsilon_classic(rdp, 1e-5)


def test_epsilon_grows_with_iterations_and_rejects_bad_input() -> None:
    spent = [epsilon(compute_rdp(0.05, 1.0, n), 1e-5)[0] for n in (1, 10, 100)]
    assert spent == sorted(spent)
    assert spent[0] > 0
    with pytest.raises(ValueError, match="integers >= 2"):
        rdp_step(0.1, 1.0, 1)
    with pytest.raises(ValueError, match="delta"):
        epsilon([1.0], 0.0, [2])
