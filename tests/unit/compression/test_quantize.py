"""Golden tests of 8-bit min/max quantisation against a pure-Python transcription of spec §8."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mindfed import _core
from mindfed.compression import dequantize, dequantize_model, quantize, quantize_model

F32 = np.float32
FLT_MAX = float(np.finfo(np.float32).max)


def _reference_quantize(values: np.ndarray) -> tuple[list[int], float, float]:
    """Java EncodeExecutor: float32 arithmetic per operation, Math.round = floor(v + 1/2), (byte) cast."""
    mn, mx = F32(FLT_MAX), F32(-FLT_MAX)
    for v in values:
        if v < mn:
            mn = v
        if v > mx:
            mx = v
    scale = (mx - mn) / F32(255.0) + F32(1e-10)
    codes = []
    for v in values:
        r = math.floor(float((v - mn) / scale - F32(128.0)) + 0.5)
        codes.append((r + 128) % 256 - 128)
    return codes, float(mn), float(mx)


def _reference_dequantize(codes: np.ndarray, mn: float, mx: float) -> np.ndarray:
    scale = (F32(mx) - F32(mn)) / F32(255.0) + F32(1e-10)
    return np.array([(F32(int(q)) + F32(128.0)) * scale + F32(mn) for q in codes], np.float32)


CASES = {
    "normal": np.random.default_rng(1).normal(0, 1, 997),
    "negative": -np.random.default_rng(2).uniform(3, 5, 7),
    "large": np.random.default_rng(3).normal(0, 1e4, 1001) * 1000,
    "single": np.array([0.25]),
    "constant": np.full(13, -2.5),
    "two_values": np.array([1.0, -1.0, 1.0, -1.0]),
    "ties": np.arange(0, 256) / 255.0 * 3 + 0.5 / 255.0 * 3,  # lands near k + 0.5 after scaling
    "signed_zeros": np.array([0.0, -0.0, 1.0, -0.0]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_quantize_equals_reference(name: str) -> None:
    # Prepare
    x = CASES[name].astype(np.float32)
    want_codes, want_min, want_max = _reference_quantize(x)
    # Execute
    codes, mn, mx = quantize(x)
    # Assert
    assert codes.dtype == np.int8
    assert codes.tolist() == want_codes
    assert np.float32(mn).tobytes() == np.float32(want_min).tobytes()  # sign of zero included
    assert np.float32(mx).tobytes() == np.float32(want_max).tobytes()
    np.testing.assert_array_equal(dequantize(codes, mn, mx), _reference_dequantize(codes, mn, mx))


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_error_at_most_half_a_step(name: str) -> None:
    x = CASES[name].astype(np.float32)
    codes, mn, mx = quantize(x)
    scale = _core.compression.quant_scale(mn, mx)
    error = np.abs(dequantize(codes, mn, mx).astype(np.float64) - x)
    slack = 4 * np.finfo(np.float32).eps * max(abs(mn), abs(mx))  # float32 rounding of the formula
    assert error.max() <= scale / 2 + slack


def test_vector_and_tail_paths_equal_a_float32_numpy_reference() -> None:
    # 1M + 7 values, a third of them exact ties (k + 0.5 on the code grid: min 0, max 255 makes
    # scale 1.0f), the rest random; the SIMD body and the scalar tail must both match.
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 255, 1_000_007).astype(np.float32)
    x[::3] = rng.integers(0, 255, x[::3].size) + np.float32(0.5)
    x[:2] = [0.0, 255.0]
    codes, mn, mx = quantize(x)
    scale = (np.float32(mx) - np.float32(mn)) / np.float32(255.0) + np.float32(1e-10)
    v = (x - np.float32(mn)) / scale - np.float32(128.0)  # float32 per operation, like Java
    want = (np.floor(v.astype(np.float64) + 0.5).astype(np.int64) + 128) % 256 - 128
    np.testing.assert_array_equal(codes.astype(np.int64), want)


def test_exact_ties_round_half_up_like_java() -> None:
    # min 0, max 255: scale = 1.0f (the 1e-10f is below float resolution), so v = x - 128.
    # 10.5 -> -117.5 -> Math.round gives -117 (C round() would give -118); 200.5 -> 72.5 -> 73.
    codes, _, _ = quantize(np.array([0.0, 255.0, 10.5, 200.5], np.float32))
    assert codes.tolist() == [-128, 127, -117, 73]


def test_min_equals_max_decodes_exactly() -> None:
    x = np.full(5, 3.75, np.float32)
    codes, mn, mx = quantize(x)
    assert codes.tolist() == [-128] * 5
    assert mn == mx == 3.75
    np.testing.assert_array_equal(dequantize(codes, mn, mx), x)


def test_empty_gives_the_java_sentinels() -> None:
    codes, mn, mx = quantize(np.empty(0, np.float32))
    assert codes.size == 0
    assert (mn, mx) == (FLT_MAX, -FLT_MAX)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_rejected(bad: float) -> None:
    x = np.array([1.0, bad, 2.0], np.float32)
    with pytest.raises(ValueError, match="index 1 is not finite"):
        quantize(x)


def test_range_overflow_is_rejected() -> None:
    with pytest.raises(ValueError, match="overflows"):
        quantize(np.array([-3e38, 3e38], np.float32))


def test_binding_checks_dtype_size_and_writability() -> None:
    x = np.ones(4, np.float32)
    with pytest.raises(TypeError):
        _core.compression.quantize_into(x.astype(np.float64), np.empty(4, np.int8))
    with pytest.raises(TypeError):
        _core.compression.quantize_into(np.ones(8, np.float32)[::2], np.empty(4, np.int8))
    with pytest.raises(ValueError, match="codes has 3 elements"):
        _core.compression.quantize_into(x, np.empty(3, np.int8))
    read_only = np.empty(4, np.int8)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="not writeable"):
        _core.compression.quantize_into(x, read_only)


def test_unaligned_input_is_read_correctly() -> None:
    x = np.random.default_rng(4).normal(0, 1, 1000).astype(np.float32)
    body = b"\x01" * 3 + x.tobytes()
    view = np.frombuffer(body, np.float32, count=x.size, offset=3)
    assert quantize(view)[0].tolist() == quantize(x)[0].tolist()


def test_quant_model_round_trip() -> None:
    rng = np.random.default_rng(5)
    model = {"conv.weight": rng.normal(0, 0.1, (4, 3, 3)).astype(np.float32), "fc.bias": np.zeros(10, np.float32)}
    compressed = quantize_model(model)
    assert [t.name for t in compressed] == list(model)
    decoded = dequantize_model(compressed)
    for t in compressed:
        scale = _core.compression.quant_scale(t.min_val, t.max_val)
        assert np.abs(decoded[t.name] - model[t.name].reshape(-1)).max() <= scale / 2 + 1e-7
