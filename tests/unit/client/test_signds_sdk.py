"""The device SDK's SignDS (spec §7.4, Java SecureProtocol.signDSModel): index selection, its statistics on a fixed
seed, the randomized-response b̂, and the Java helpers' values."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from mindfed.client.signds import (
    calc_expectation,
    calc_opt_thr,
    calc_pmf,
    comb,
    count_inters,
    find_opt_output_dim,
    sign_ds_update,
    update_order,
)
from mindfed.protocol.plan import CipherParams

D, SIGN_K, DIM_OUT, EPS = 1000, 0.05, 10, 2.0  # top-k = 50; a small eps so the pmf has spread


def cipher(**kw: object) -> CipherParams:
    base: dict[str, object] = {"encrypt_type": "SIGNDS", "sign_k": SIGN_K, "sign_eps": EPS, "sign_thr_ratio": 0.6,
                               "sign_global_lr": 0.1, "sign_dim_out": DIM_OUT, "signds_r_est": 1e-5,
                               "signds_is_reached": 0}
    base.update(kw)
    return CipherParams(**base)  # type: ignore[arg-type]


def model_pair(seed: int = 3) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """before/after with distinct update values over two tensors (D = 600 + 400), so the top-k is unambiguous."""
    rng = np.random.default_rng(seed)
    before = {"w": rng.standard_normal((20, 30)).astype(np.float32), "b": rng.standard_normal(400).astype(np.float32)}
    delta = rng.permutation(D).astype(np.float32) / D - 0.5
    after = {"w": before["w"] + delta[:600].reshape(20, 30), "b": before["b"] + delta[600:]}
    return before, after


def test_comb_is_javas_n_choose_k() -> None:
    assert comb(10, 3) == 120 == math.comb(10, 3)
    assert comb(5, 0) == 1
    assert comb(3, 4) == 0
    assert comb(-1, 0) == 0
    assert comb(61089, 43) == pytest.approx(math.comb(61089, 43), rel=1e-12)


def test_find_opt_output_dim_matches_the_java_test_range() -> None:
    # SecureProtocolTest.signDSModel: k = 0.2, D = 800000, eps 100, ratio 0.6 → closeTo(40, 70); ours is pinned
    topk = int(np.float32(0.2) * np.float32(800000))
    assert find_opt_output_dim(float(np.float32(0.6)), topk, 800000, 100.0) == 58
    assert find_opt_output_dim(float(np.float32(0.6)), 617, 61706, 100.0) == 43  # LeNet-sized, the defaults


def test_upload_is_sorted_unique_in_range_names_only() -> None:
    before, after = model_pair()
    for seed in range(20):
        update = sign_ds_update(before, after, ["w", "b"], cipher(), random.Random(seed))
        assert update.sign in (1, -1)
        assert update.index_array.dtype == np.int32
        assert update.index_array.size == DIM_OUT
        assert np.all(np.diff(update.index_array) > 0)
        assert update.index_array[0] >= 0
        assert update.index_array[-1] < D
        assert update.b_hat in ("0", "1")
        assert update.names == ("w", "b")


def test_sign_dim_out_zero_picks_the_optimum() -> None:
    before, after = model_pair()
    update = sign_ds_update(before, after, ["w", "b"], cipher(sign_dim_out=0, sign_eps=100.0), random.Random(1))
    assert update.index_array.size == find_opt_output_dim(float(np.float32(0.6)), 50, D, 100.0)


def test_top_k_share_follows_the_exponential_mechanism_pmf() -> None:
    # Prepare: the top-k of s·Δ for both signs, and the pmf the selection must follow
    before, after = model_pair()
    delta = np.concatenate([(after[n] - before[n]).reshape(-1) for n in ("w", "b")])
    top = {1: set(np.argsort(-delta)[:50].tolist()), -1: set(np.argsort(delta)[:50].tolist())}
    pmf = calc_pmf(calc_opt_thr(50, D, DIM_OUT, EPS), 50, D, DIM_OUT, EPS)
    rng = random.Random(2024)
    runs = 1500
    hits = np.zeros(DIM_OUT + 1)
    # Execute
    for _ in range(runs):
        update = sign_ds_update(before, after, ["w", "b"], cipher(), rng)
        hits[len(top[update.sign].intersection(update.index_array.tolist()))] += 1
    # Assert: the empirical distribution of top-k picks is the pmf (each cell within 4 standard errors)
    freq = hits / runs
    for v, p in enumerate(pmf):
        assert abs(freq[v] - p) <= 4 * math.sqrt(p * (1 - p) / runs) + 1e-3, (v, freq[v], p)
    assert abs(freq @ np.arange(DIM_OUT + 1) - calc_expectation(pmf)) < 0.05


def test_count_inters_never_passes_the_output_dimension() -> None:
    # a denominator too large leaves the cumulative sum below any draw: Java would loop forever
    assert count_inters(random.Random(0), 2, 1e300, 50, D, DIM_OUT, EPS) == DIM_OUT


def test_b_hat_is_the_randomized_response_of_the_magnitude_test() -> None:
    # Updates of mean top-k magnitude ~0.47: below 2·r_est for r_est = 1 (true), above for r_est = 1e-5 (false)
    before, after = model_pair()
    rng = random.Random(5)
    runs = 800
    ones_big = sum(sign_ds_update(before, after, ["w", "b"], cipher(signds_r_est=1.0), rng).b_hat == "1"
                   for _ in range(runs))
    ones_small = sum(sign_ds_update(before, after, ["w", "b"], cipher(), rng).b_hat == "1" for _ in range(runs))
    keep = math.exp(5) / (1 + math.exp(5))
    assert abs(ones_big / runs - keep) < 0.015
    assert abs(ones_small / runs - (1 - keep)) < 0.015
    # reached: the bound is r_est / 2 = 0.25, below ~0.47: the test is false again
    reached = sum(sign_ds_update(before, after, ["w", "b"], cipher(signds_r_est=0.5, signds_is_reached=1),
                                 rng).b_hat == "1" for _ in range(300))
    assert reached / 300 < 0.05


def test_order_breaks_ties_like_javas_merge() -> None:
    delta = np.array([1, 0, 1, 2, 0, 1, 2, 0], np.float32)
    assert update_order(delta, descending=True).tolist() == [6, 3, 5, 2, 0, 7, 4, 1]
    assert update_order(delta, descending=False).tolist() == [7, 4, 1, 5, 2, 0, 6, 3]
