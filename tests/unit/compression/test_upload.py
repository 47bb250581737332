"""DIFF_SPARSE_QUANT: device encode, and server decode into accumulators vs a dense numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from mindfed import _core
from mindfed.compression import (
    CompressedTensor,
    decode_into,
    dequantize,
    encode_upload,
    quantize,
    sparse_indices,
    upload_diff,
)
from mindfed.errors import ProtocolError

SHAPES = {
    "conv.weight": (6, 1, 5, 5),
    "conv.bias": (6,),
    "fc1.weight": (64, 101),
    "fc.weight": (10, 97),
    "fc.bias": (7,),
}
NAMES = list(SHAPES)
RATE, ITERATION, DATA_SIZE = 0.4, 12, 37


def _model(seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: (rng.normal(0, scale, shape)).astype(np.float32) for name, shape in SHAPES.items()}


def _upload() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[CompressedTensor]]:
    old, new = _model(1), _model(2)
    diffs = {name: upload_diff(new[name] * np.float32(DATA_SIZE), old[name], DATA_SIZE) for name in NAMES}
    return old, diffs, encode_upload(diffs, NAMES, RATE, ITERATION)


def _dense_reference(
    acc0: dict[str, np.ndarray], compressed: list[CompressedTensor], latest: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """MindSpore's decode: dense decoded vector (0 where unkept), + n * latest, then acc += it."""
    sizes = [latest[name].size for name in NAMES]
    dense = np.zeros(sum(sizes), np.float32)
    dense[sparse_indices(sum(sizes), RATE, ITERATION)] = np.concatenate(
        [dequantize(t.codes, t.min_val, t.max_val) for t in compressed]
    )
    out, offset = {}, 0
    for name, size in zip(NAMES, sizes, strict=True):
        update = dense[offset : offset + size] + np.float32(DATA_SIZE) * latest[name].reshape(-1)
        out[name] = acc0[name] + update.reshape(acc0[name].shape)
        offset += size
    return out


def test_encode_keeps_masked_entries_in_name_order() -> None:
    # Prepare
    _, diffs, compressed = _upload()
    flat = np.concatenate([diffs[name].reshape(-1) for name in NAMES])
    kept = sparse_indices(flat.size, RATE, ITERATION)
    # Execute
    codes = np.concatenate([t.codes for t in compressed])
    # Assert
    assert [t.name for t in compressed] == NAMES
    assert codes.size == kept.size
    offset = 0
    for t in compressed:
        size = diffs[t.name].size
        local = kept[(kept >= offset) & (kept < offset + size)] - offset
        want_codes, want_min, want_max = quantize(diffs[t.name].reshape(-1)[local])
        assert t.codes.tolist() == want_codes.tolist()
        assert (t.min_val, t.max_val) == (want_min, want_max)
        offset += size


def test_decode_into_equals_dense_reference_bit_for_bit() -> None:
    # Prepare
    latest, _, compressed = _upload()
    acc = _model(3, scale=100.0)
    want = _dense_reference(acc, compressed, latest)
    # Execute
    decode_into(acc, compressed, NAMES, RATE, ITERATION, DATA_SIZE, latest)
    # Assert
    for name in NAMES:
        assert acc[name].shape == SHAPES[name]
        assert acc[name].tobytes() == want[name].tobytes()


def test_round_trip_recovers_new_weights_times_n() -> None:
    # latest == old: acc = decoded diff + n * old ~= n * new on kept coordinates, n * old elsewhere.
    old, diffs, compressed = _upload()
    acc = {name: np.zeros(shape, np.float32) for name, shape in SHAPES.items()}
    decode_into(acc, compressed, NAMES, RATE, ITERATION, DATA_SIZE, old)
    kept = set(sparse_indices(sum(diffs[n].size for n in NAMES), RATE, ITERATION).tolist())
    offset = 0
    for t in compressed:
        scale = _core.compression.quant_scale(t.min_val, t.max_val)
        want = diffs[t.name].reshape(-1) + np.float32(DATA_SIZE) * old[t.name].reshape(-1)
        got = acc[t.name].reshape(-1)
        is_kept = np.array([offset + i in kept for i in range(got.size)])
        base = np.float32(DATA_SIZE) * old[t.name].reshape(-1)
        np.testing.assert_array_equal(got[~is_kept], base[~is_kept])
        assert np.abs(got[is_kept] - want[is_kept]).max() <= scale / 2 + 1e-4 * np.abs(want).max()
        offset += got.size


def test_tensor_with_no_kept_values_accepts_java_sentinels() -> None:
    # D = 3 at rate 0.4: K = 1, so at most one of the three one-element tensors has a value.
    names = ["a", "b", "c"]
    latest = {n: np.array([float(i + 1)], np.float32) for i, n in enumerate(names)}
    diffs = {n: np.array([0.5], np.float32) for n in names}
    compressed = encode_upload(diffs, names, 0.4, 5)
    empty = [t for t in compressed if t.codes.size == 0]
    assert len(empty) == 2
    assert all(t.min_val > t.max_val for t in empty)  # FLT_MAX, -FLT_MAX
    acc = {n: np.zeros(1, np.float32) for n in names}
    decode_into(acc, compressed, names, 0.4, 5, 2, latest)
    for t in compressed:
        want = 2.0 * latest[t.name][0] + (0.5 if t.codes.size else 0.0)
        assert acc[t.name][0] == pytest.approx(want)


def _bad(compressed: list[CompressedTensor], index: int, **change: object) -> list[CompressedTensor]:
    out = list(compressed)
    out[index] = out[index]._replace(**change)
    return out


@pytest.mark.parametrize(
    ("mutate", "names", "match"),
    [
        (lambda c: _bad(c, 2, codes=c[2].codes[:-1]), NAMES, "the mask keeps"),
        (lambda c: _bad(c, 0, codes=np.append(c[0].codes, np.int8(3))), NAMES, "the mask keeps"),
        (lambda c: _bad(c, 1, min_val=5.0, max_val=4.0), NAMES, "min_val"),
        (lambda c: _bad(c, 1, min_val=float("nan")), NAMES, "min_val"),
        (lambda c: _bad(c, 4, max_val=float("inf")), NAMES, "min_val"),
        (lambda c: _bad(c, 0, min_val=-3e38, max_val=3e38), NAMES, "min_val"),
        (lambda c: c[:-1], NAMES, "differ from name_vec"),
        (lambda c: list(reversed(c)), NAMES, "differ from name_vec"),
        (lambda c: [], [], "name_vec is empty"),
        (lambda c: [*c, c[0]._replace(name="ghost")], [*NAMES, "ghost"], "not in the model"),
    ],
)
def test_bad_uploads_are_rejected_before_any_write(mutate, names: list[str], match: str) -> None:  # type: ignore[no-untyped-def]
    # Prepare
    latest, _, compressed = _upload()
    acc = _model(3)
    before = {name: value.copy() for name, value in acc.items()}
    # Execute / Assert
    with pytest.raises(ProtocolError, match=match):
        decode_into(acc, mutate(compressed), names, RATE, ITERATION, DATA_SIZE, latest)
    for name in NAMES:
        np.testing.assert_array_equal(acc[name], before[name])


def test_binding_rejects_bad_arrays_and_kept_outside_the_tensor() -> None:
    acc, latest = np.zeros(10, np.float32), np.ones(10, np.float32)
    codes, kept = np.zeros(2, np.int8), np.array([3, 7], np.int32)
    decode = _core.compression.decode_accumulate
    with pytest.raises(TypeError):
        decode(acc.astype(np.float64), codes, 0.0, 1.0, kept, 0, latest, 1)
    with pytest.raises(ValueError, match="latest has 9"):
        decode(acc, codes, 0.0, 1.0, kept, 0, latest[:9], 1)
    with pytest.raises(ValueError, match="not ascending inside"):
        decode(acc, codes, 0.0, 1.0, np.array([3, 17], np.int32), 0, latest, 1)
    with pytest.raises(ValueError, match="not ascending inside"):
        decode(acc, codes, 0.0, 1.0, np.array([7, 3], np.int32), 0, latest, 1)
    with pytest.raises(ProtocolError, match="2 values, the sparse mask keeps 1"):
        decode(acc, codes, 0.0, 1.0, kept[:1], 0, latest, 1)
    np.testing.assert_array_equal(acc, 0)
    decode(acc, codes, 0.0, 1.0, kept + 100, 100, latest, 2)  # kept are global positions
    assert acc[3] == pytest.approx(2 + 128 * (1 / 255 + 1e-10))


def test_decode_reads_unaligned_request_bodies() -> None:
    latest, _, compressed = _upload()
    acc_a, acc_b = _model(3), _model(3)
    decode_into(acc_a, compressed, NAMES, RATE, ITERATION, DATA_SIZE, latest)
    unaligned = []
    for t in compressed:
        body = b"\x00" * 5 + t.codes.tobytes()
        unaligned.append(t._replace(codes=np.frombuffer(body, np.int8, offset=5)))
    odd_latest = {}
    for name, value in latest.items():
        body = b"\x00" * 1 + value.tobytes()
        odd_latest[name] = np.frombuffer(body, np.float32, count=value.size, offset=1).reshape(value.shape)
    decode_into(acc_b, unaligned, NAMES, RATE, ITERATION, DATA_SIZE, odd_latest)
    for name in NAMES:
        assert acc_a[name].tobytes() == acc_b[name].tobytes()
