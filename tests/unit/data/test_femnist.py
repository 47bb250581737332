"""LEAF FEMNIST loading from small shards generated here (never downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mindfed.data.femnist import FEMNIST_NUM_CLASSES, load_leaf_femnist, write_leaf_shard


def _user(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.random((n, 784)), rng.integers(0, FEMNIST_NUM_CLASSES, n)


def test_directory_of_shards_gives_one_device_per_user(tmp_path: Path) -> None:
    # Prepare
    rng = np.random.default_rng(0)
    write_leaf_shard(tmp_path / "a.json", {"f0": _user(rng, 3), "f1": _user(rng, 5)})
    write_leaf_shard(tmp_path / "b.json", {"f2": _user(rng, 2)})
    (tmp_path / "notes.txt").write_text("not a shard")

    # Execute
    users = load_leaf_femnist(tmp_path)

    # Assert
    assert list(users) == ["f0", "f1", "f2"]
    assert [d.num_samples for d in users.values()] == [3, 5, 2]
    for data in users.values():
        assert data.x.dtype == np.float32
        assert data.x.shape[1:] == (1, 32, 32)
        assert data.y.dtype == np.int64
        assert data.y.min() >= 0
        assert data.y.max() < FEMNIST_NUM_CLASSES


def test_labels_and_pixels_survive_round_trip_at_native_size(tmp_path: Path) -> None:
    # Prepare
    rng = np.random.default_rng(1)
    x, y = _user(rng, 4)
    write_leaf_shard(tmp_path / "one.json", {"u": (x, y)})

    # Execute
    data = load_leaf_femnist(tmp_path / "one.json", image_size=28)["u"]

    # Assert
    np.testing.assert_array_equal(data.y, y)
    np.testing.assert_allclose(data.x.reshape(4, 784), x, rtol=1e-6)


def test_resize_to_32_keeps_a_constant_image_constant(tmp_path: Path) -> None:
    # Prepare
    write_leaf_shard(tmp_path / "c.json", {"u": (np.full((1, 784), 0.25), [7])})

    # Execute
    data = load_leaf_femnist(tmp_path / "c.json")["u"]

    # Assert
    np.testing.assert_allclose(data.x, 0.25, rtol=1e-6)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"users": ["u"]}, "user_data"),
        ({"users": ["u"], "user_data": {}}, "no user_data"),
        ({"users": ["u"], "user_data": {"u": {"x": [[0.5] * 783], "y": [1]}}}, "784"),
        ({"users": ["u"], "user_data": {"u": {"x": [[0.5] * 784], "y": [1, 2]}}}, "1 images"),
        ({"users": ["u"], "user_data": {"u": {"x": [[0.5] * 784], "y": [62]}}}, "0..61"),
        ({"users": ["u"], "user_data": {"u": {"x": [[1.5] * 784], "y": [1]}}}, "[0, 1]"),
        ({"users": ["u"], "num_samples": [2], "user_data": {"u": {"x": [[0.5] * 784], "y": [1]}}},
         "num_samples says 2"),
    ],
)
def test_malformed_shard_names_file_and_reason(tmp_path: Path, doc: dict[str, object], reason: str) -> None:
    # Prepare
    shard = tmp_path / "bad.json"
    shard.write_text(json.dumps(doc))

    # Execute / Assert
    with pytest.raises(ValueError, match="bad.json") as info:
        load_leaf_femnist(shard)
    assert reason in str(info.value)


def test_invalid_json_and_missing_path_are_value_errors(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "broken.json").write_text("{not json")

    # Execute / Assert
    with pytest.raises(ValueError, match="broken.json"):
        load_leaf_femnist(tmp_path)
    with pytest.raises(ValueError, match="no such file"):
        load_leaf_femnist(tmp_path / "absent")
    with pytest.raises(ValueError, match="no \\*.json"):
        load_leaf_femnist(_empty_dir(tmp_path))


def _empty_dir(root: Path) -> Path:
    empty = root / "empty"
    empty.mkdir()
    return empty


def test_user_in_two_shards_is_rejected(tmp_path: Path) -> None:
    # Prepare
    rng = np.random.default_rng(2)
    write_leaf_shard(tmp_path / "a.json", {"dup": _user(rng, 1)})
    write_leaf_shard(tmp_path / "b.json", {"dup": _user(rng, 1)})

    # Execute / Assert
    with pytest.raises(ValueError, match="'dup' already came from"):
        load_leaf_femnist(tmp_path)


def test_writer_rejects_images_that_do_not_match_labels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="need \\(2, 784\\)"):
        write_leaf_shard(tmp_path / "w.json", {"u": (np.zeros((3, 784)), [0, 1])})


def test_empty_user_loads_as_zero_samples(tmp_path: Path) -> None:
    # Prepare
    write_leaf_shard(tmp_path / "e.json", {"u": (np.zeros((0, 784)), [])})

    # Execute
    data = load_leaf_femnist(tmp_path / "e.json")["u"]

    # Assert
    assert data.x.shape == (0, 1, 32, 32)
    assert data.y.shape == (0,)
