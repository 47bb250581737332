"""load/loads/to_dict/hyper_params/overrides on real files, starting from the seed sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mindfed.config import (
    AggregationType,
    DownloadCompressType,
    EncryptType,
    EvalType,
    ServerMode,
    UploadCompressType,
    hyper_params,
    load,
    loads,
    parse_override,
    to_dict,
    with_overrides,
)
from mindfed.errors import ConfigError

LenetFile = Callable[..., Path]

# Spec §2.10: the JSON keys of hyperParams:String, as MindSpore prints them (sorted).
SPEC_HYPER_PARAM_KEYS = [
    "aggregation_type", "client_batch_size", "client_epoch_num", "client_learning_rate",
    "cipher_time_window", "dp_delta", "dp_eps", "dp_norm_clip", "download_compress_type",
    "enable_ssl", "encrypt_type", "fl_iteration_num", "global_iteration_time_window", "iid_rate",
    "laplace_eval_eps", "pki_verify", "privacy_eval_type", "reconstruct_secrets_threshold",
    "secure_aggregation", "share_secrets_ratio", "sign_dim_out", "sign_eps", "sign_global_lr",
    "sign_k", "sign_thr_ratio", "start_fl_job_threshold", "start_fl_job_time_window",
    "total_client_num", "update_model_ratio", "update_model_time_window", "upload_compress_type",
    "upload_sparse_rate",
]  # fmt: skip
# Beyond MindSpore: the privacy accountant's keys, published so every server stops at the same iteration.
MINDFED_HYPER_PARAM_KEYS = ["dp_eps_budget", "dp_population", "secure_compressed_upload", "secure_quant_bound"]


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in tree.items():
        key = f"{prefix}.{name}" if prefix else name
        out.update(_leaves(value, key) if isinstance(value, dict) else {key: value})
    return out


def test_seed_sample_loads_with_every_value(seed_raw: dict[str, Any], seed_yaml: Path) -> None:
    # Execute
    cfg = load(seed_yaml)
    # Assert: every key of the seed reads back with its value (floats written as ints compare equal)
    effective = _leaves(to_dict(cfg))
    for key, value in _leaves(seed_raw).items():
        assert effective[key] == value, key
    assert cfg.server_mode is ServerMode.FEDERATED_LEARNING
    assert cfg.unsupervised.eval_type is EvalType.SILHOUETTE_SCORE
    assert cfg.encrypt.encrypt_train_type is EncryptType.NOT_ENCRYPT
    assert cfg.distributed_cache.address == "127.0.0.1:23456"
    assert isinstance(cfg.encrypt.signds.sign_eps, float)  # written "100": a float key takes ints


def test_seed_sample_round_trips_through_yaml(seed_yaml: Path) -> None:
    # Prepare
    cfg = load(seed_yaml)
    # Execute
    again = loads(yaml.safe_dump(to_dict(cfg), sort_keys=False), "roundtrip.yaml")
    # Assert
    assert again == cfg


def test_to_dict_has_every_key_with_defaults_and_plain_strings(seed_yaml: Path) -> None:
    # Execute
    tree = to_dict(load(seed_yaml))
    # Assert: sections absent from the seed appear with MindSpore's defaults
    assert tree["aggregation"] == {"aggregation_type": "FedAvg", "iid_rate": 0.0, "total_client_num": 1}
    assert tree["encrypt"]["laplace_eval"] == {"laplace_eval_eps": 100.0}
    assert tree["encrypt"]["privacy_eval_type"] == "NOT_ENCRYPT"
    assert type(tree["server_mode"]) is str
    assert list(tree) == [
        "fl_name", "fl_iteration_num", "server_mode", "enable_ssl", "aggregation",
        "distributed_cache", "round", "summary", "unsupervised", "encrypt", "compression",
        "ssl", "client_verify", "client",
    ]  # fmt: skip


def test_demo_sample_uses_embedded_redis_and_demo_values(demo_yaml: Path) -> None:
    # Execute
    cfg = load(demo_yaml)
    # Assert
    assert cfg.distributed_cache.is_embedded
    assert (cfg.round.start_fl_job_threshold, cfg.round.update_model_threshold) == (8, 8)
    assert cfg.round.iteration_time_window_ms(cfg.encrypt) == 90000
    assert cfg.round.global_iteration_time_window == 120000
    assert (cfg.client.client_epoch_num, cfg.client.client_batch_size) == (5, 16)
    assert cfg.client.client_learning_rate == 0.02
    assert cfg.unsupervised.eval_type is EvalType.NOT_EVAL


def test_hyper_params_have_exactly_the_spec_keys_sorted(seed_yaml: Path) -> None:
    # Execute
    params = hyper_params(load(seed_yaml))
    # Assert
    assert list(params) == sorted(SPEC_HYPER_PARAM_KEYS + MINDFED_HYPER_PARAM_KEYS)
    assert params["encrypt_type"] == "NOT_ENCRYPT"
    assert params["secure_aggregation"] is False
    assert params["start_fl_job_threshold"] == 2
    assert params["cipher_time_window"] == 3000
    assert yaml.safe_load(yaml.safe_dump(params)) == params  # plain JSON-able types only


def test_hyper_params_flag_secure_aggregation_under_pw(lenet_file: LenetFile) -> None:
    # Execute
    params = hyper_params(load(lenet_file({"encrypt.encrypt_train_type": "STABLE_PW_ENCRYPT"})))
    # Assert
    assert params["secure_aggregation"] is True
    assert params["encrypt_type"] == "STABLE_PW_ENCRYPT"


def test_overrides_replace_values_and_are_validated(seed_yaml: Path) -> None:
    # Execute
    cfg = load(seed_yaml, {"fl_iteration_num": 3, "round.start_fl_job_threshold": 4})
    # Assert
    assert (cfg.fl_iteration_num, cfg.round.start_fl_job_threshold) == (3, 4)
    with pytest.raises(ConfigError) as err:
        load(seed_yaml, {"round.update_model_ratio": 1.5})
    message = str(err.value)
    assert "lenet.yaml [override]: round.update_model_ratio: 1.5 is out of range" in message
    assert "allowed: a float in (0, 1]" in message


def test_override_of_unknown_key_suggests_the_right_one(seed_yaml: Path) -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'round\.start_fl_job_threshold'\?"):
        load(seed_yaml, {"round.start_fl_job_treshold": 4})


def test_override_can_fill_an_absent_section(seed_yaml: Path) -> None:
    # Execute
    cfg = load(seed_yaml, {"aggregation.aggregation_type": "Scaffold", "aggregation.iid_rate": 0.5})
    # Assert
    assert cfg.aggregation.aggregation_type is AggregationType.SCAFFOLD
    assert cfg.aggregation.iid_rate == 0.5


def test_with_overrides_returns_a_validated_copy(seed_yaml: Path) -> None:
    # Prepare
    cfg = load(seed_yaml)
    # Execute
    changed = with_overrides(cfg, {"compression.download_compress_type": "QUANT"})
    # Assert
    assert changed.compression.download_compress_type is DownloadCompressType.QUANT
    assert cfg.compression.download_compress_type is DownloadCompressType.NO_COMPRESS
    with pytest.raises(ConfigError, match="can be only one of"):
        with_overrides(cfg, {"compression.download_compress_type": "ZIP"})


def test_parse_override_reads_yaml_scalars() -> None:
    assert parse_override("round.start_fl_job_threshold=4") == ("round.start_fl_job_threshold", 4)
    assert parse_override("round.update_model_ratio=0.5") == ("round.update_model_ratio", 0.5)
    assert parse_override("enable_ssl=false") == ("enable_ssl", False)
    assert parse_override("distributed_cache.address=") == ("distributed_cache.address", "")
    with pytest.raises(ConfigError, match="dotted.key=value"):
        parse_override("round.start_fl_job_threshold")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file"):
        load(missing)


def test_bad_yaml_syntax_names_file_and_line(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "broken.yaml"
    path.write_text("fl_name: x\nround:\n  start_fl_job_threshold: [1,\n", encoding="utf-8")
    # Execute / Assert
    with pytest.raises(ConfigError, match=r"broken\.yaml: invalid YAML \(line 4"):
        load(path)


def test_top_level_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- fl_name\n- round\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"list\.yaml: the top level is list .*\(line 1\); allowed: a mapping"):
        load(path)


def test_duplicate_key_is_rejected_with_both_lines(seed_yaml: Path) -> None:
    text = seed_yaml.read_text(encoding="utf-8") + "fl_name: Other\n"
    with pytest.raises(ConfigError, match=r"dup\.yaml: fl_name: duplicate key at line \d+ \(first at line 1\)"):
        loads(text, "dup.yaml")


def test_errors_carry_the_line_of_the_key(seed_yaml: Path) -> None:
    text = seed_yaml.read_text(encoding="utf-8").replace("update_model_ratio: 1.0", "update_model_ratio: 2.0")
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "update_model_ratio" in s)
    with pytest.raises(ConfigError, match=rf"\(line {line}\)$"):
        loads(text, "lenet.yaml")


def test_null_takes_the_default_for_optional_keys(lenet_file: LenetFile) -> None:
    # Execute
    cfg = load(lenet_file({"compression.upload_sparse_rate": None, "client.client_epoch_num": None}))
    # Assert
    assert cfg.compression.upload_sparse_rate == 0.4
    assert cfg.client.client_epoch_num == 25


def test_null_for_a_required_key_is_missing(lenet_file: LenetFile) -> None:
    with pytest.raises(ConfigError) as err:
        load(lenet_file({"round.start_fl_job_threshold": None}))
    assert "lenet.yaml: round.start_fl_job_threshold: null given" in str(err.value)
    assert "The parameter 'round.start_fl_job_threshold' is missing" in str(err.value)


def test_list_value_is_rejected_not_dropped(lenet_file: LenetFile) -> None:
    with pytest.raises(ConfigError) as err:
        load(lenet_file({"client.client_batch_size": [16, 32]}))
    assert "lenet.yaml: client.client_batch_size: [16, 32] is a list; allowed: an int" in str(err.value)


@pytest.mark.parametrize(("key", "value", "phrase"), [
    ("round.global_iteration_time_window", {"a": 1},
     "The parameter 'round.global_iteration_time_window' is expected to be type int, actually dict"),
    ("client.client_batch_size", [16, 32], "The parameter 'client.client_batch_size' is expected to be type int, "
     "actually list"),
    ("server_mode", ["FEDERATED_LEARNING"], "The parameter 'server_mode' is expected to be type str, actually list"),
])
def test_a_mapping_or_list_for_a_scalar_keeps_mindspores_phrase(lenet_file: LenetFile, key: str, value: object,
                                                                 phrase: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(lenet_file({key: value}))
    assert phrase in str(err.value)


def test_empty_section_takes_defaults(lenet_file: LenetFile) -> None:
    # Execute: `client:` with nothing under it parses as null
    cfg = load(lenet_file({"client": None}))
    # Assert
    assert cfg.client.client_learning_rate == 0.001
    assert cfg.compression.upload_compress_type is UploadCompressType.NO_COMPRESS


def test_scalar_where_a_section_belongs_is_rejected(lenet_file: LenetFile) -> None:
    with pytest.raises(ConfigError, match=r"lenet\.yaml: round: 5 is not a mapping; allowed: a mapping"):
        load(lenet_file({"round": 5}))
