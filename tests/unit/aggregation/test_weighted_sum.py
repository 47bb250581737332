"""The _core.agg kernels against a float64 numpy reference, and their argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from mindfed import _core

# Sizes around the 16-lane vector width and the 2048-float group block, plus odd tails.
SIZES = [0, 1, 15, 16, 17, 2047, 2048, 2049, 3 * 2048 + 5, 100_003]


def _unaligned_read_only(values: np.ndarray, offset: int) -> np.ndarray:
    """A read-only float32 view at `offset` bytes into an immutable bytes object."""
    body = b"\x00" * offset + values.astype(np.float32).tobytes()
    return np.frombuffer(body, dtype=np.float32, count=values.size, offset=offset)


@pytest.mark.parametrize("n", SIZES)
def test_accumulate_matches_float64_reference(n: int) -> None:
    # Prepare
    rng = np.random.default_rng(n)
    acc = rng.uniform(0.5, 1.5, n).astype(np.float32)
    update = rng.uniform(0.5, 1.5, n).astype(np.float32)
    expected = acc.astype(np.float64) + 0.75 * update.astype(np.float64)
    # Execute
    _core.agg.accumulate(acc, update, 0.75)
    # Assert
    np.testing.assert_allclose(acc, expected, rtol=1e-5)


@pytest.mark.parametrize("k", range(10))
@pytest.mark.parametrize("n", [17, 3 * 2048 + 5])
def test_accumulate_group_matches_float64_reference(k: int, n: int) -> None:
    # Prepare
    rng = np.random.default_rng(k * 1000 + n)
    acc = rng.uniform(0.5, 1.5, n).astype(np.float32)
    updates = [rng.uniform(0.5, 1.5, n).astype(np.float32) for _ in range(k)]
    weights = [float(w) for w in rng.uniform(0.1, 3.0, k)]
    expected = acc.astype(np.float64) + sum(
        (w * u.astype(np.float64) for w, u in zip(weights, updates, strict=True)), np.zeros(n)
    )
    # Execute
    _core.agg.accumulate_group(acc, updates, weights)
    # Assert
    np.testing.assert_allclose(acc, expected, rtol=1e-5)


@pytest.mark.parametrize("offset", [1, 2, 3, 5])
def test_unaligned_read_only_updates_are_read_correctly(offset: int) -> None:
    # Prepare
    rng = np.random.default_rng(offset)
    n = 2 * 2048 + 37
    values = [rng.uniform(0.5, 1.5, n).astype(np.float32) for _ in range(5)]
    views = [_unaligned_read_only(v, offset) for v in values]
    assert not views[0].flags.aligned
    assert not views[0].flags.writeable
    single, grouped = np.zeros(n, np.float32), np.zeros(n, np.float32)
    # Execute
    _core.agg.accumulate(single, views[0], 2.0)
    _core.agg.accumulate_group(grouped, views, [1.0] * 5)
    # Assert
    np.testing.assert_allclose(single, 2.0 * values[0], rtol=1e-6)
    np.testing.assert_allclose(grouped, np.sum(np.stack(values).astype(np.float64), axis=0), rtol=1e-5)


def test_unaligned_writable_accumulator_is_updated_in_place() -> None:
    # Prepare
    n = 1000
    buffer = bytearray(4 * n + 3)
    acc = np.frombuffer(buffer, dtype=np.float32, count=n, offset=3)
    assert not acc.flags.aligned
    update = np.arange(n, dtype=np.float32)
    # Execute
    _core.agg.accumulate(acc, update, 1.0)
    _core.agg.accumulate_group(acc, [update, update], [1.0, 1.0])
    # Assert
    np.testing.assert_array_equal(np.frombuffer(buffer, np.float32, n, 3), 3.0 * update)


@pytest.mark.parametrize(
    "bad_update",
    [
        np.ones(8, dtype=np.float64),
        np.ones(16, dtype=np.float32)[::2],
        np.ones(8, dtype=">f4"),
        [1.0] * 8,
    ],
    ids=["float64", "strided", "big-endian", "list"],
)
def test_wrong_update_type_raises_type_error(bad_update: object) -> None:
    acc = np.zeros(8, np.float32)
    with pytest.raises(TypeError):
        _core.agg.accumulate(acc, bad_update, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"updates\[1\]"):
        _core.agg.accumulate_group(acc, [np.ones(8, np.float32), bad_update], [1.0, 1.0])  # type: ignore[list-item]
    np.testing.assert_array_equal(acc, 0.0)


def test_float64_accumulator_raises_type_error() -> None:
    with pytest.raises(TypeError):
        _core.agg.accumulate(np.zeros(8), np.ones(8, np.float32), 1.0)  # type: ignore[arg-type]


def test_size_mismatch_raises_value_error_naming_both_sizes() -> None:
    acc = np.zeros(10, np.float32)
    with pytest.raises(ValueError, match=r"9 elements, acc has 10"):
        _core.agg.accumulate(acc, np.ones(9, np.float32), 1.0)
    with pytest.raises(ValueError, match=r"updates\[1\] has 11 elements, acc has 10"):
        _core.agg.accumulate_group(acc, [np.ones(10, np.float32), np.ones(11, np.float32)], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"2 updates but 1 weights"):
        _core.agg.accumulate_group(acc, [np.ones(10, np.float32)] * 2, [1.0])
    np.testing.assert_array_equal(acc, 0.0)


def test_read_only_accumulator_raises_value_error() -> None:
    acc = np.zeros(4, np.float32)
    acc.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _core.agg.accumulate(acc, np.ones(4, np.float32), 1.0)


@pytest.mark.parametrize("n", [0, 33, 5000])
def test_scale_into_writes_scaled_copy_and_works_in_place(n: int) -> None:
    # Prepare
    src = np.random.default_rng(n).uniform(-2, 2, n).astype(np.float32)
    out = np.empty_like(src)
    # Execute
    _core.agg.scale_into(src, 0.25, out)
    in_place = src.copy()
    _core.agg.scale_into(in_place, 0.25, in_place)
    # Assert
    np.testing.assert_array_equal(out, src * np.float32(0.25))
    np.testing.assert_array_equal(in_place, out)


def test_triad_computes_a_and_returns_a_duration() -> None:
    # Prepare
    b = np.arange(1000, dtype=np.float32)
    c = np.full(1000, 2.0, np.float32)
    a = np.zeros(1000, np.float32)
    # Execute
    seconds = _core.bench.triad(a, b, c, 3.0, 2)
    # Assert
    np.testing.assert_array_equal(a, b + 6.0)
    assert seconds > 0.0
    with pytest.raises(ValueError, match="repeats"):
        _core.bench.triad(a, b, c, 3.0, 0)
