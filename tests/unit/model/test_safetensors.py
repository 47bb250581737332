"""The .safetensors reader/writer, against hand-built files and (when installed) the reference library."""

import json
import struct

import numpy as np
import pytest

from mindfed.errors import ModelFormatError
from mindfed.model.safetensors import read_safetensors, save_safetensors


def _file(header: dict, body: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + body


def test_reads_hand_built_file_skipping_metadata(tmp_path):
    # Prepare
    weight = np.arange(4, dtype="<f4").reshape(2, 2)
    ids = np.array([5, -6], dtype="<i8")
    header = {
        "__metadata__": {"format": "pt"},
        "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "ids": {"dtype": "I64", "shape": [2], "data_offsets": [16, 32]},
        "bf": {"dtype": "BF16", "shape": [], "data_offsets": [32, 34]},
    }
    path = tmp_path / "m.safetensors"
    path.write_bytes(_file(header, weight.tobytes() + ids.tobytes() + struct.pack("<H", 0xC000)))

    # Execute
    tensors = read_safetensors(path)

    # Assert
    assert list(tensors) == ["w", "ids", "bf"]
    np.testing.assert_array_equal(tensors["w"], weight)
    assert tensors["ids"].tolist() == [5, -6]
    assert tensors["bf"].shape == ()
    assert tensors["bf"].dtype == np.float32
    assert float(tensors["bf"]) == -2.0


def test_round_trip_and_aligned_header(tmp_path):
    # Prepare
    tensors = {"b": np.ones((2, 3), np.float16), "a": np.arange(5, dtype=np.float32)[::2], "s": np.float64(2.0)}
    path = tmp_path / "rt.safetensors"

    # Execute
    save_safetensors(path, tensors)
    loaded = read_safetensors(path)

    # Assert
    (header_length,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert header_length % 8 == 0
    assert list(loaded) == ["b", "a", "s"]
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == np.asarray(array).dtype


def test_interoperates_with_reference_library(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {"x": np.arange(6, dtype=np.float32).reshape(3, 2), "y": np.array([1, 2], dtype=np.int32)}

    save_safetensors(tmp_path / "ours.safetensors", tensors)
    safetensors_numpy.save_file(tensors, str(tmp_path / "theirs.safetensors"))

    theirs_read_ours = safetensors_numpy.load_file(str(tmp_path / "ours.safetensors"))
    ours_read_theirs = read_safetensors(tmp_path / "theirs.safetensors")
    for name, array in tensors.items():
        np.testing.assert_array_equal(theirs_read_ours[name], array)
        np.testing.assert_array_equal(ours_read_theirs[name], array)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x00", "too short"),
        (struct.pack("<Q", 1000) + b"{}", "exceeds the file"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 2) + b"{x", "not UTF-8 JSON"),
        (_file({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 4), "leave the data"),
        (_file({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\x00" * 8), "needs 12"),
        (_file({"w": {"dtype": "F32", "shape": [2]}}, b""), "malformed"),
        (_file({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 0]}}, b""), "invalid shape"),
    ],
)
def test_invalid_files_raise_model_format_error(tmp_path, data, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)

    with pytest.raises(ModelFormatError, match=message):
        read_safetensors(path)


def test_save_refuses_metadata_name_and_unsupported_dtype(tmp_path):
    with pytest.raises(ModelFormatError, match="__metadata__"):
        save_safetensors(tmp_path / "a.safetensors", {"__metadata__": np.ones(1)})
    with pytest.raises(ModelFormatError, match="complex"):
        save_safetensors(tmp_path / "a.safetensors", {"c": np.ones(1, np.complex64)})
    assert not list(tmp_path.iterdir())
