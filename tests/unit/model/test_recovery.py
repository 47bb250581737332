"""RecoveryCheckpoints: file naming, pruning to the newest few, strict listing and loading the newest good file."""

import logging
from datetime import datetime

import numpy as np
import pytest

from mindfed.model.ckpt import read_ckpt
from mindfed.model.lenet import init_lenet5
from mindfed.model.recovery import RecoveryCheckpoints
from mindfed.model.weights import ModelWeights

_NOW = datetime(2024, 5, 6, 7, 8, 9)


def test_save_writes_mindspore_name_and_creates_directory(tmp_path):
    # Prepare
    directory = tmp_path / "fl_ckpt" / "nested"
    store = RecoveryCheckpoints(directory, "job")
    weights = init_lenet5()

    # Execute
    path = store.save(4, weights, now=_NOW)

    # Assert
    assert path == directory / "job_recovery_iteration_4_20240506_070809.ckpt"
    loaded = read_ckpt(path)
    assert list(loaded) == weights.names
    assert ModelWeights(loaded).equal(weights)


def test_only_the_keep_newest_by_iteration_survive(tmp_path):
    # Prepare
    store = RecoveryCheckpoints(tmp_path, "job", keep=3)
    weights = ModelWeights({"w": np.ones(2)})

    # Execute: iteration 10 sorts before 9 as text, so order must be numeric
    for iteration in (8, 9, 10, 2, 11):
        store.save(iteration, weights, now=_NOW)

    # Assert
    assert [iteration for iteration, _ in store.list()] == [11, 10, 9]
    assert len(list(tmp_path.iterdir())) == 3


def test_list_ignores_foreign_and_malformed_names(tmp_path):
    # Prepare
    store = RecoveryCheckpoints(tmp_path, "job")
    good = tmp_path / "job_recovery_iteration_5_20240101_000000.ckpt"
    good.write_bytes(b"")
    for name in (
        "other_recovery_iteration_9_20240101_000000.ckpt",
        "xjob_recovery_iteration_9_20240101_000000.ckpt",
        "job_recovery_iteration_9_20240101_000000.ckpt.tmp",
        "job_recovery_iteration_09_20240101_000000.ckpt",
        "job_recovery_iteration_-1_20240101_000000.ckpt",
        "job_recovery_iteration_9_20241301_000000.ckpt",  # month 13
        "job_recovery_iteration_9_2024010_000000.ckpt",
        "job_recovery_iteration_9.ckpt",
        "notes.txt",
    ):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "job_recovery_iteration_7_20240101_000000.ckpt").mkdir()

    # Execute / Assert
    assert store.list() == [(5, good)]
    assert RecoveryCheckpoints(tmp_path / "absent", "job").list() == []


def test_same_iteration_newer_timestamp_first(tmp_path):
    store = RecoveryCheckpoints(tmp_path, "job")
    weights = ModelWeights({"w": np.ones(2)})
    older = store.save(3, weights, now=datetime(2024, 1, 1))
    newer = store.save(3, weights, now=datetime(2024, 1, 2))

    assert store.list() == [(3, newer), (3, older)]


def test_latest_skips_corrupt_newest_and_keeps_flags(tmp_path, caplog):
    # Prepare
    store = RecoveryCheckpoints(tmp_path, "job")
    first = ModelWeights({"a": np.ones(2), "b": np.zeros(3)})
    store.save(6, first, now=_NOW)
    corrupt = store.save(7, first.replace({"a": np.full(2, 5.0)}), now=_NOW)
    corrupt.write_bytes(corrupt.read_bytes()[:-5])

    # Execute
    with caplog.at_level(logging.WARNING, logger="mindfed.model.recovery"):
        found = store.latest(require_aggr={"b": False, "not_in_ckpt": False})

    # Assert
    assert found is not None
    iteration, weights = found
    assert iteration == 6
    assert weights.require_aggr == {"a": True, "b": False}
    np.testing.assert_array_equal(weights["a"], [1.0, 1.0])
    assert corrupt.name in caplog.text


def test_latest_none_when_nothing_loads(tmp_path):
    store = RecoveryCheckpoints(tmp_path, "job")
    assert store.latest() is None
    (tmp_path / "job_recovery_iteration_1_20240101_000000.ckpt").write_bytes(b"\xff\xff")
    assert store.latest() is None


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        RecoveryCheckpoints(tmp_path, "job", keep=0)
    with pytest.raises(ValueError, match="fl_name"):
        RecoveryCheckpoints(tmp_path, "")
    with pytest.raises(ValueError, match="iteration"):
        RecoveryCheckpoints(tmp_path, "job").save(-1, ModelWeights({"w": np.ones(1)}))


def test_fl_name_with_regex_characters_is_literal(tmp_path):
    store = RecoveryCheckpoints(tmp_path, "a.b+")
    (tmp_path / "aXb+_recovery_iteration_1_20240101_000000.ckpt").write_bytes(b"")
    path = store.save(2, ModelWeights({"w": np.ones(1)}), now=_NOW)

    assert store.list() == [(2, path)]
