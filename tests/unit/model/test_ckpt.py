"""MindSpore .ckpt reading and writing, checked against protobuf bytes assembled by hand from the spec (§13)."""

import logging
import struct

import numpy as np
import pytest

from mindfed.errors import ModelFormatError
from mindfed.model.ckpt import read_ckpt, write_ckpt


# --- an independent, deliberately naive protobuf writer (no code shared with mindfed) -----------------------------
def _varint(value: int) -> bytes:
    out = b""
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out += bytes([low | 0x80])
        else:
            return out + bytes([low])


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _tensor_proto(dims: list[int], tensor_type: str, content: bytes, packed: bool = False) -> bytes:
    head = _ld(1, b"".join(_varint(d) for d in dims)) if packed else b"".join(b"\x08" + _varint(d) for d in dims)
    return head + _ld(2, tensor_type.encode()) + _ld(3, content)


def _checkpoint(tag: str, tensor: bytes, field: int = 2) -> bytes:
    """One serialized Checkpoint{value: [Value{tag, tensor|maptensor}]}."""
    return _ld(1, _ld(1, tag.encode()) + _ld(field, tensor))


def test_reads_hand_assembled_checkpoint(tmp_path, caplog):
    # Prepare: the entries of a LeNet-like training checkpoint, one Checkpoint message each
    weight = np.arange(6, dtype="<f4").reshape(2, 3)
    big = np.arange(10, dtype="<f4").reshape(5, 2)
    halves = np.array_split(big, 2)  # MindSpore slices big tensors this way, repeating the full dims
    data = b"".join(
        [
            _checkpoint("conv1.weight", _tensor_proto([2, 3], "Float32", weight.tobytes())),
            _checkpoint("global_step", _tensor_proto([1], "Int32", struct.pack("<i", 42))),
            _checkpoint("learning_rate", _tensor_proto([0], "Float32", struct.pack("<f", 0.01))),
            _checkpoint("fc.weight", _tensor_proto([5, 2], "Float32", halves[0].tobytes())),
            _checkpoint("fc.weight", _tensor_proto([5, 2], "Float32", halves[1].tobytes())),
            _checkpoint("emb", _ld(1, _tensor_proto([1], "Int64", b"\x00" * 8)), field=3),  # MapTensorProto
            _checkpoint("half", _tensor_proto([2], "Float16", np.array([1.5, -2], "<f2").tobytes(), packed=True)),
            _checkpoint("mask", _tensor_proto([3], "Bool", b"\x01\x00\x01")),
            _checkpoint("bf", _tensor_proto([1], "BFloat16", struct.pack("<H", 0x3FC0))),  # 1.5
            _checkpoint("count", _tensor_proto([2], "Int64", struct.pack("<qq", -3, 2**40))),
            _checkpoint("text", _tensor_proto([1], "str", b"abc")),
        ]
    )
    path = tmp_path / "lenet.ckpt"
    path.write_bytes(data)

    # Execute
    with caplog.at_level(logging.WARNING, logger="mindfed.model.ckpt"):
        tensors = read_ckpt(path)

    # Assert
    assert list(tensors) == ["conv1.weight", "global_step", "learning_rate", "fc.weight", "half", "mask", "bf", "count"]
    np.testing.assert_array_equal(tensors["conv1.weight"], weight)
    assert tensors["conv1.weight"].dtype == np.float32
    assert tensors["global_step"].dtype == np.int32
    assert tensors["global_step"].tolist() == [42]
    assert tensors["learning_rate"].shape == ()
    assert tensors["learning_rate"] == np.float32(0.01)
    np.testing.assert_array_equal(tensors["fc.weight"], big)
    assert tensors["half"].dtype == np.float16
    assert tensors["half"].tolist() == [1.5, -2.0]
    assert tensors["mask"].tolist() == [True, False, True]
    assert tensors["bf"].dtype == np.float32
    assert tensors["bf"].tolist() == [1.5]
    assert tensors["count"].tolist() == [-3, 2**40]
    assert "MapTensor 'emb'" in caplog.text
    assert "'text'" in caplog.text
    assert "'str'" in caplog.text


def test_writer_output_equals_hand_assembled_bytes(tmp_path):
    # Prepare
    weight = np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)
    step = np.array([7], dtype=np.int32)
    scalar = np.float32(2.5)
    expected = (
        _checkpoint("w", _tensor_proto([3, 2], "Float32", weight.tobytes()))
        + _checkpoint("step", _tensor_proto([1], "Int32", step.tobytes()))
        + _checkpoint("s", _tensor_proto([0], "Float32", scalar.tobytes()))
    )

    # Execute
    write_ckpt(tmp_path / "out.ckpt", {"w": weight, "step": step, "s": np.asarray(scalar)})

    # Assert
    assert (tmp_path / "out.ckpt").read_bytes() == expected


def test_round_trip_keeps_names_order_dtypes_and_values(tmp_path):
    # Prepare
    rng = np.random.default_rng(1)
    tensors = {
        "z.weight": rng.standard_normal((4, 3, 2)).astype(np.float32),
        "a.bias": rng.standard_normal(300).astype(np.float32),  # multi-byte length varints
        "scalar": np.array(3.25, dtype=np.float32),
        "f64": np.array([1e-300, 2.0]),
        "big_endian": np.array([1.0, 2.0], dtype=">f4"),
        "transposed": rng.standard_normal((3, 5)).astype(np.float32).T,
        "i8": np.array([-128, 127], dtype=np.int8),
        "empty": np.zeros((0,), dtype=np.float32),
    }
    path = tmp_path / "rt.ckpt"

    # Execute
    write_ckpt(path, tensors)
    loaded = read_ckpt(path)

    # Assert
    assert list(loaded) == list(tensors)
    for name, array in tensors.items():
        assert loaded[name].shape == array.shape, name
        assert loaded[name].dtype == array.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(loaded[name], array)
    assert not list(tmp_path.glob("*.tmp"))


def test_write_refuses_unsupported_dtype_and_keeps_old_file(tmp_path):
    # Prepare
    path = tmp_path / "m.ckpt"
    write_ckpt(path, {"w": np.ones(2, np.float32)})
    before = path.read_bytes()

    # Execute / Assert
    with pytest.raises(ModelFormatError, match="object"):
        write_ckpt(path, {"w": np.ones(2, np.float32), "o": np.array([object()])})
    with pytest.raises(ModelFormatError, match="non-empty"):
        write_ckpt(path, {"": np.ones(2, np.float32)})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt"]


def test_truncated_file_names_file_and_offset(tmp_path):
    # Prepare
    good = _checkpoint("a", _tensor_proto([2], "Float32", b"\x00" * 8)) + _checkpoint(
        "b", _tensor_proto([2], "Float32", b"\x00" * 8)
    )
    path = tmp_path / "cut.ckpt"
    path.write_bytes(good[:-3])

    # Execute / Assert
    second = len(good) // 2
    with pytest.raises(ModelFormatError, match=rf"cut\.ckpt.*byte offset {second}\b"):
        read_ckpt(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (_checkpoint("w", _tensor_proto([3], "Float32", b"\x00" * 8)), r"dims \[3\] but 2 elements"),
        (_checkpoint("w", _tensor_proto([1], "Float32", b"\x00" * 5)), "multiple of 4"),
        (_ld(1, _ld(2, _tensor_proto([1], "Float32", b"\x00" * 4))), "no tag"),
        (_ld(1, _ld(1, b"w")), "no tensor"),
        (_checkpoint("w", b"\x08\x01" + _ld(2, b"Float32")), "lacks tensor_type or tensor_content"),
        (b"\x08\x01", "Checkpoint.value has wire type 0"),
        (
            _checkpoint("w", _tensor_proto([1], "Float32", b"\x00" * 4))
            + _checkpoint("v", _tensor_proto([1], "Float32", b"\x00" * 4))
            + _checkpoint("w", _tensor_proto([1], "Float32", b"\x00" * 4)),
            "appears again",
        ),
        (
            _checkpoint("w", _tensor_proto([2], "Float32", b"\x00" * 4))
            + _checkpoint("w", _tensor_proto([2], "Int32", b"\x00" * 4)),
            "slices of 'w' disagree",
        ),
        (b"\xff" * 12, "corrupt or truncated"),
    ],
)
def test_corrupt_files_raise_model_format_error(tmp_path, data, message):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(data)

    with pytest.raises(ModelFormatError, match=message) as info:
        read_ckpt(path)
    assert "bad.ckpt" in str(info.value)


def test_unknown_top_level_fields_are_skipped(tmp_path):
    # A newer MindSpore may add fields next to `value` (e.g. a CRC); they carry no tensor.
    path = tmp_path / "crc.ckpt"
    path.write_bytes(_checkpoint("w", _tensor_proto([1], "Float32", b"\x00\x00\x80\x3f")) + b"\x10\x05")

    assert read_ckpt(path)["w"].tolist() == [1.0]


def test_missing_file_is_model_format_error(tmp_path):
    with pytest.raises(ModelFormatError, match="nope.ckpt"):
        read_ckpt(tmp_path / "nope.ckpt")
