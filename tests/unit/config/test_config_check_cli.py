"""`mindfed config check FILE`: exit codes, the effective YAML on stdout, messages on stderr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mindfed.cli.config_check import EXIT_INVALID_CONFIG, EXIT_OK, main
from mindfed.config import load, to_dict

LenetFile = Callable[..., Path]


def test_valid_file_prints_the_effective_config(seed_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    code = main([str(seed_yaml)])
    # Assert
    out, err = capsys.readouterr()
    assert code == EXIT_OK == 0
    printed = yaml.safe_load(out)
    assert printed == to_dict(load(seed_yaml))
    assert printed["aggregation"]["aggregation_type"] == "FedAvg"  # defaults are printed too
    assert err == ""


def test_invalid_file_prints_the_error_and_exits_2(lenet_file: LenetFile, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    path = lenet_file({"round.update_model_ratio": 1.5})
    # Execute
    code = main([str(path)])
    # Assert
    out, err = capsys.readouterr()
    assert code == EXIT_INVALID_CONFIG == 2
    assert out == ""
    assert f"{path}: round.update_model_ratio: 1.5 is out of range; allowed: a float in (0, 1]" in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(tmp_path / "absent.yaml")])
    assert code == EXIT_INVALID_CONFIG
    assert "absent.yaml: no such file" in capsys.readouterr().err


def test_set_overrides_apply_and_are_validated(seed_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    code = main([str(seed_yaml), "--set", "round.start_fl_job_threshold=4", "--set", "client.client_epoch_num=1"])
    # Assert
    printed = yaml.safe_load(capsys.readouterr().out)
    assert code == EXIT_OK
    assert printed["round"]["start_fl_job_threshold"] == 4
    assert printed["client"]["client_epoch_num"] == 1
    assert main([str(seed_yaml), "--set", "round.start_fl_job_threshold=0"]) == EXIT_INVALID_CONFIG
    assert "[override]: round.start_fl_job_threshold: 0 is out of range" in capsys.readouterr().err


def test_forced_compression_warning_goes_to_stderr(lenet_file: LenetFile, capsys: pytest.CaptureFixture[str]) -> None:
    path = lenet_file(
        {"encrypt.encrypt_train_type": "PW_ENCRYPT", "compression.upload_compress_type": "DIFF_SPARSE_QUANT"}
    )
    assert main([str(path)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["compression"]["upload_compress_type"] == "NO_COMPRESS"
    assert "warning: compression.upload_compress_type: DIFF_SPARSE_QUANT" in err


def test_leading_check_word_and_usage_errors(seed_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(seed_yaml)]) == EXIT_OK
    capsys.readouterr()
    assert main([]) == EXIT_INVALID_CONFIG
    assert "usage: mindfed config check" in capsys.readouterr().err
