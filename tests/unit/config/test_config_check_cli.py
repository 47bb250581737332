"""`mindfed config check FILE`: exit codes, the effective YAML on stdout, messages on stderr, and the same verdict as
the server's on the same file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mindfed.cli.config_check import main
from mindfed.cli.exit_codes import CONFIG_ERROR, OK, USAGE_ERROR
from mindfed.config import load, to_dict

LenetFile = Callable[..., Path]


def test_valid_file_prints_the_effective_config(seed_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    code = main([str(seed_yaml)])
    # Assert
    out, err = capsys.readouterr()
    assert code == OK == 0
    printed = yaml.safe_load(out)
    assert printed == to_dict(load(seed_yaml))
    assert printed["aggregation"]["aggregation_type"] == "FedAvg"  # defaults are printed too
    assert err == ""


def test_invalid_file_prints_the_error_and_exits_78(lenet_file: LenetFile, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    path = lenet_file({"round.update_model_ratio": 1.5})
    # Execute
    code = main([str(path)])
    # Assert
    out, err = capsys.readouterr()
    assert code == CONFIG_ERROR == 78
    assert out == ""
    assert f"{path}: round.update_model_ratio: 1.5 is out of range; allowed: a float in (0, 1]" in err


def test_missing_file_exits_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(tmp_path / "absent.yaml")])
    assert code == CONFIG_ERROR
    assert "absent.yaml: no such file" in capsys.readouterr().err


def test_set_overrides_apply_and_are_validated(seed_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    code = main([str(seed_yaml), "--set", "round.start_fl_job_threshold=4", "--set", "client.client_epoch_num=1"])
    # Assert
    printed = yaml.safe_load(capsys.readouterr().out)
    assert code == OK
    assert printed["round"]["start_fl_job_threshold"] == 4
    assert printed["client"]["client_epoch_num"] == 1
    assert main([str(seed_yaml), "--set", "round.start_fl_job_threshold=0"]) == CONFIG_ERROR
    assert "[override]: round.start_fl_job_threshold: 0 is out of range" in capsys.readouterr().err


def test_forced_compression_warning_goes_to_stderr(lenet_file: LenetFile, capsys: pytest.CaptureFixture[str]) -> None:
    path = lenet_file(
        {"encrypt.encrypt_train_type": "PW_ENCRYPT", "compression.upload_compress_type": "DIFF_SPARSE_QUANT"}
    )
    assert main([str(path), "--set", "encrypt.encrypt_train_type=NOT_ENCRYPT"]) == OK  # no warning then
    assert "warning" not in capsys.readouterr().err
    main([str(path)])  # its verdict on PW_ENCRYPT is the capability check's (tested below)
    err = capsys.readouterr().err
    assert "warning: compression.upload_compress_type: DIFF_SPARSE_QUANT" in err


def test_the_secure_compressed_demo_config_keeps_compression_on(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).resolve().parents[3] / "yamls" / "demo_pw_compress.yaml"
    assert main([str(path)]) == OK
    out, err = capsys.readouterr()
    compression = yaml.safe_load(out)["compression"]
    assert (compression["upload_compress_type"], compression["secure_compressed_upload"]) == ("DIFF_SPARSE_QUANT", True)
    assert "warning" not in err  # not forced off, as it is under PW_ENCRYPT without the flag


def test_leading_check_word_and_usage_errors(seed_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(seed_yaml)]) == OK
    capsys.readouterr()
    assert main([]) == USAGE_ERROR
    assert "usage: mindfed config check" in capsys.readouterr().err


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("overrides", [
    {"server_mode": "CLOUD_TRAINING", "encrypt.encrypt_train_type": "PW_ENCRYPT"},  # workers: STABLE_PW only
    {"encrypt.encrypt_train_type": "SIGNDS", "encrypt.signds.sign_k": 0.3},  # served, but out of (0, 0.25]
    {"client_verify.pki_verify": True},
    {"server_mode": "CLOUD_TRAINING", "client_verify.pki_verify": True},
    {"round.update_model_ratio": 2.0},
    {"encrypt.encrypt_train_type": "PW_ENCRYPT", "compression.upload_compress_type": "DIFF_SPARSE_QUANT",
     "compression.secure_compressed_upload": True, "round.start_fl_job_threshold": 259},  # the ring would wrap
    {"compression.secure_compressed_upload": True},  # needs PW_ENCRYPT
])
def test_config_check_refuses_what_the_server_refuses_with_its_text(lenet_file: LenetFile, overrides: dict[str, object]
                                                                     ) -> None:
    # The server process on the same file (its capability check runs before it connects to Redis), then the check.
    path = str(lenet_file(overrides))
    server = subprocess.run([sys.executable, "-m", "mindfed.cli.server_process", "--yaml_config", path,
                             "--http_server_address", "127.0.0.1:0", "--cache_address", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=60, check=False)
    check = subprocess.run([sys.executable, "-m", "mindfed.cli.main", "config", "check", path],
                           capture_output=True, text=True, timeout=60, check=False)

    assert (server.returncode, check.returncode) == (CONFIG_ERROR, CONFIG_ERROR)
    assert error_lines(check.stderr) == error_lines(server.stderr) != []
    assert check.stdout == ""


def test_config_check_checks_the_https_material_with_the_servers_texts(
        lenet_file: LenetFile, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mindfed.tls.dev_certs import write_dev_certs
    from mindfed.tls.identity import PARSE_FAILED
    from mindfed.tls.passwords import SERVER_PASSWORD_ENV

    certs = write_dev_certs(tmp_path / "certs", "server_password_12345")
    path = str(lenet_file({k: v for k, v in certs.yaml_overrides().items()}))
    monkeypatch.delenv(SERVER_PASSWORD_ENV, raising=False)
    monkeypatch.delenv(f"{SERVER_PASSWORD_ENV}_FILE", raising=False)
    # without a password: valid, with a note that the p12 was not decrypted
    assert main([path]) == OK
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["enable_ssl"] is True
    assert "not decrypted" in err
    # with the right one: decrypted, no note; with a wrong one: the server's text
    monkeypatch.setenv(SERVER_PASSWORD_ENV, "server_password_12345")
    assert main([path]) == OK
    assert "not decrypted" not in capsys.readouterr().err
    monkeypatch.setenv(SERVER_PASSWORD_ENV, "wrong")
    assert main([path]) == CONFIG_ERROR
    out, err = capsys.readouterr()
    assert PARSE_FAILED in err
    assert out == ""
    assert "wrong" not in err.replace("wrong password", "")  # the text names the cause, never the password
    # a missing p12 is refused with or without a password
    certs.server_cert_path.unlink()
    monkeypatch.delenv(SERVER_PASSWORD_ENV)
    assert main([path]) == CONFIG_ERROR
    assert "is not exist" in capsys.readouterr().err


def test_config_check_notes_what_the_address_names(seed_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    address = "redis+sentinel://:p%40ss-W0rd@h1:26379,h2:26379,h3:26379/m"
    code = main([str(seed_yaml), "--set", f"distributed_cache.address={address}"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "note: distributed_cache: Redis Sentinel master 'm' db 0 via 3 sentinels" in err
    assert "once 1 replica(s) hold it" in err
    assert "p%40ss" not in out + err
    assert "p@ss" not in out + err
