"""Golden tests of the seeded sparse mask against a pure-Python transcription of spec §8.1."""

from __future__ import annotations

import numpy as np
import pytest

from mindfed.compression import kept_count, sparse_indices

MODULUS = 2147483647
MULTIPLIER = 48271


def _wrap32(v: int) -> int:
    """Java int overflow: keep the low 32 bits, two's complement."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _java_mod(a: int, m: int) -> int:
    """C/Java %: truncates toward zero, so the result has the sign of a (Python's % floors)."""
    r = abs(a) % m
    return -r if a < 0 else r


def _reference_k(d: int, rate: float) -> int:
    return int(np.float32(d) * np.float32(rate))  # float32 product, then (int) truncation


def _reference_mask(d: int, rate: float, seed: int) -> list[int]:
    k = _reference_k(d, rate)
    mask = [1] * k + [0] * (d - k)
    seed = _java_mod(_wrap32(_wrap32(seed + MODULUS) * MULTIPLIER), MODULUS)
    for i in range(d):
        rand = seed / 4294967294.0 + 0.5
        seed = _java_mod(_wrap32(seed * MULTIPLIER), MODULUS)
        j = int(rand * (d - i)) + i
        mask[i], mask[j] = mask[j], mask[i]
    return mask


def test_reference_seed_transform_wraps_like_java() -> None:
    # iteration 1: 1 + 2147483647 wraps to -2**31; * 48271 (odd) stays -2**31; % M = -1 (truncating)
    assert _java_mod(_wrap32(_wrap32(1 + MODULUS) * MULTIPLIER), MODULUS) == -1
    assert _java_mod(_wrap32(-1 * MULTIPLIER), MODULUS) == -48271


SMALL_CASES = [
    (d, rate, iteration)
    for d in (1, 2, 7, 997)
    for rate in (0.4, 1.0, 0.1, 0.73)
    for iteration in (0, 1, 2, 57, 2**31 - 1)
]
# The pure-Python reference takes ~0.1 s at D = 100003: three cases there.
LARGE_CASES = [(100003, 0.4, 1), (100003, 1.0, 2**31 - 1), (100003, 0.73, 57)]


@pytest.mark.parametrize(("d", "rate", "iteration"), SMALL_CASES + LARGE_CASES)
def test_indices_equal_reference_mask(d: int, rate: float, iteration: int) -> None:
    # Prepare
    want = np.flatnonzero(_reference_mask(d, rate, iteration)).astype(np.int32)
    # Execute
    got = sparse_indices(d, rate, iteration)
    # Assert
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    assert got.size == kept_count(d, rate) == _reference_k(d, rate)


def test_indices_are_pinned_for_a_small_case() -> None:
    # A frozen copy of the reference's output: guards the reference itself against edits.
    assert sparse_indices(10, 0.4, 1).tolist() == [4, 6, 8, 9]


@pytest.mark.parametrize(
    ("d", "rate", "k"),
    [
        (997, 1e-6, 0),  # tiny rate: nothing kept
        (997, 1.0 / 997 + 1e-7, 1),  # exactly one kept
        (997, 1.0, 997),
        (1, 1.0, 1),
        (1, 0.5, 0),
        (10, 0.7, 7),  # float32: 10 * 0.7f rounds to 7.0f; in double it would be 6.99999988 -> 6
        (0, 0.4, 0),
    ],
)
def test_kept_count_boundaries(d: int, rate: float, k: int) -> None:
    assert kept_count(d, rate) == k == _reference_k(d, rate)
    got = sparse_indices(d, rate, 3)
    np.testing.assert_array_equal(got, np.flatnonzero(_reference_mask(d, rate, 3)))


def test_float32_product_differs_from_double_where_it_matters() -> None:
    assert int(10 * float(np.float32(0.7))) == 6
    assert kept_count(10, 0.7) == 7


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.0001, float("nan")])
def test_rate_outside_0_1_is_rejected(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        sparse_indices(100, rate, 1)


def test_length_limits() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        kept_count(-1, 0.5)
    with pytest.raises(ValueError, match="int32"):
        kept_count(2**31, 0.5)
    with pytest.raises(TypeError):
        sparse_indices(10, 0.5, 2**31)  # the seed is a Java int


def test_indices_are_cached_and_read_only() -> None:
    first = sparse_indices(1000, 0.4, 9)
    assert sparse_indices(1000, 0.4, 9) is first
    assert not first.flags.writeable
