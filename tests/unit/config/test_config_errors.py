"""Every section rejects wrong types, out-of-range values, bad enum literals and missing required keys.

Each message must name the file, the dotted key, the value found and what is allowed (ours first),
then MindSpore's own phrase (so MindSpore-style substring checks pass).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mindfed.config import load
from mindfed.errors import ConfigError

LenetFile = Callable[..., Path]

TYPE_INT = "is expected to be type int"
TYPE_FLOAT = "is expected to be type float"
TYPE_STR = "is expected to be type str"
TYPE_BOOL = "is expected to be type bool"
RANGE = "Failed to check value of parameter"
CHOICE = "can be only one of ["
U32 = "an int in [1, 4294967295]"

# (key, bad value, what the message must say is allowed, MindSpore's phrase)
BAD_VALUES = [
    # common keys
    ("fl_iteration_num", 2.0, U32, TYPE_INT),
    ("fl_iteration_num", True, U32, TYPE_INT),
    ("fl_iteration_num", "25", U32, TYPE_INT),
    ("fl_iteration_num", 0, U32, RANGE),
    ("fl_iteration_num", 2**32, U32, RANGE),
    ("fl_name", 7, "a non-empty string", TYPE_STR),
    ("server_mode", "FL", "one of FEDERATED_LEARNING, HYBRID_TRAINING, CLOUD_TRAINING", CHOICE),
    ("enable_ssl", "False", "a boolean (true or false)", TYPE_BOOL),
    ("enable_ssl", 0, "a boolean (true or false)", TYPE_BOOL),
    # aggregation.*
    ("aggregation.aggregation_type", "fedavg", "one of FedAvg, FedProx, Scaffold, FedNova, FedCM", CHOICE),
    ("aggregation.iid_rate", 1.5, "a float in (0, 1]", RANGE),
    ("aggregation.total_client_num", 0, U32, RANGE),
    # distributed_cache.*
    ("distributed_cache.address", 23456, "a string", TYPE_STR),
    ("distributed_cache.server_name", 1.0, "a string", TYPE_STR),
    # round.*
    ("round.start_fl_job_threshold", 2.5, U32, TYPE_INT),
    ("round.start_fl_job_threshold", 0, U32, RANGE),
    ("round.start_fl_job_time_window", "30s", U32, TYPE_INT),
    ("round.update_model_ratio", 1.5, "a float in (0, 1]", RANGE),
    ("round.update_model_ratio", 0, "a float in (0, 1]", RANGE),
    ("round.update_model_ratio", "1e-1", "a float in (0, 1]", TYPE_FLOAT),
    ("round.update_model_time_window", -1, U32, RANGE),
    ("round.global_iteration_time_window", False, U32, TYPE_INT),
    # summary.*
    ("summary.continuous_failure_times", 0, U32, RANGE),
    ("summary.metrics_file", 3, "a non-empty string", TYPE_STR),
    ("summary.participation_time_level", 5, "a string", TYPE_STR),
    # unsupervised.*
    ("unsupervised.eval_type", "SILHOUETTE", "one of NOT_EVAL, SILHOUETTE_SCORE", CHOICE),
    ("unsupervised.cluster_client_num", -3, "an int in [1, 4294967295] (or 0 for unset)", RANGE),
    # encrypt.*
    ("encrypt.encrypt_train_type", "PW", "one of NOT_ENCRYPT, PW_ENCRYPT, STABLE_PW_ENCRYPT", CHOICE),
    ("encrypt.privacy_eval_type", "GAUSS", "one of NOT_ENCRYPT, LAPLACE", CHOICE),
    ("encrypt.pw_encrypt.share_secrets_ratio", 1.01, "a float in (0, 1]", RANGE),
    ("encrypt.pw_encrypt.cipher_time_window", 3000.0, U32, TYPE_INT),
    ("encrypt.pw_encrypt.reconstruct_secrets_threshold", 0, U32, RANGE),
    ("encrypt.dp_encrypt.dp_eps", 0.0, "a float > 0", RANGE),
    ("encrypt.dp_encrypt.dp_delta", 1.0, "a float in (0, 1)", RANGE),
    ("encrypt.dp_encrypt.dp_norm_clip", "1.0", "a float > 0", TYPE_FLOAT),
    ("encrypt.signds.sign_k", 0.3, "a float in (0, 0.25]", RANGE),
    ("encrypt.signds.sign_eps", 101, "a float in (0, 100]", RANGE),
    ("encrypt.signds.sign_thr_ratio", 0.4, "a float in [0.5, 1]", RANGE),
    ("encrypt.signds.sign_global_lr", -0.1, "a float > 0", RANGE),
    ("encrypt.signds.sign_dim_out", 51, "an int in [0, 50]", RANGE),
    ("encrypt.laplace_eval.laplace_eval_eps", 500001, "a float in (0, 500000]", RANGE),
    # compression.*
    ("compression.upload_compress_type", "QUANT", "one of NO_COMPRESS, DIFF_SPARSE_QUANT", CHOICE),
    ("compression.download_compress_type", "DIFF_SPARSE_QUANT", "one of NO_COMPRESS, QUANT", CHOICE),
    ("compression.upload_sparse_rate", 0.0, "a float in (0, 1]", RANGE),
    # ssl.*
    ("ssl.cert_expire_warning_time_in_day", 6, "an int in [7, 180]", RANGE),
    ("ssl.cert_expire_warning_time_in_day", 181, "an int in [7, 180]", RANGE),
    ("ssl.server_cert_path", 12, "a string", TYPE_STR),
    # client_verify.*
    ("client_verify.pki_verify", "yes please", "a boolean (true or false)", TYPE_BOOL),
    ("client_verify.replay_attack_time_diff", -1, "an int >= 0", RANGE),
    # client.*
    ("client.client_epoch_num", 0, U32, RANGE),
    ("client.client_batch_size", 32.0, U32, TYPE_INT),
    ("client.client_learning_rate", 0, "a float > 0", RANGE),
    ("client.connection_num", 0, U32, RANGE),
    ("client.http_url_prefix", False, "a string", TYPE_STR),
]


@pytest.mark.parametrize(("key", "value", "allowed", "mindspore_phrase"), BAD_VALUES)
def test_bad_value_names_file_key_value_and_allowed(
    lenet_file: LenetFile, key: str, value: object, allowed: str, mindspore_phrase: str
) -> None:
    # Prepare
    path = lenet_file({key: value})
    # Execute
    with pytest.raises(ConfigError) as err:
        load(path)
    # Assert
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert repr(value) in message or repr(float(value)) in message, message  # type: ignore[arg-type]
    assert f"; allowed: {allowed}" in message, message
    assert f"'{key}' {mindspore_phrase}" in message or f"'{key}': " in message, message
    assert mindspore_phrase in message, message


REQUIRED_KEYS = [
    "fl_name",
    "fl_iteration_num",
    "server_mode",
    "enable_ssl",
    "distributed_cache.address",
    "round.start_fl_job_threshold",
    "round.start_fl_job_time_window",
    "round.update_model_ratio",
    "round.update_model_time_window",
    "round.global_iteration_time_window",
    "summary.metrics_file",
    "summary.failure_event_file",
]


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_absent_required_key_is_missing(lenet_file: LenetFile, key: str) -> None:
    # Prepare
    path = lenet_file(removed=[key])
    # Execute
    with pytest.raises(ConfigError) as err:
        load(path)
    # Assert
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: no value given; allowed: "), message
    assert f"The parameter '{key}' is missing" in message


@pytest.mark.parametrize("key", ["fl_name", "summary.metrics_file", "round.start_fl_job_threshold"])
def test_empty_string_counts_as_missing(lenet_file: LenetFile, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(lenet_file({key: ""}))
    assert f"lenet.yaml: {key}: '' is empty, which counts as missing" in str(err.value)
    assert f"The parameter '{key}' is missing" in str(err.value)


def test_yaml_float_without_dot_gets_a_hint(lenet_file: LenetFile) -> None:
    with pytest.raises(ConfigError, match=r"write 1\.0e-3"):
        load(lenet_file({"client.client_learning_rate": "1e-3"}))


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("fl_iteration_nums", "fl_iteration_num"),
        ("round.update_model_ration", "round.update_model_ratio"),
        ("encrypt.encrypt_type", "encrypt.encrypt_train_type"),
        ("encrypt.signds.sign_kk", "encrypt.signds.sign_k"),
        ("client.client_epochs_num", "client.client_epoch_num"),
    ],
)
def test_unknown_key_is_named_with_a_suggestion(lenet_file: LenetFile, key: str, suggestion: str) -> None:
    # Prepare
    path = lenet_file({key: 1})
    # Execute
    with pytest.raises(ConfigError) as err:
        load(path)
    # Assert
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: unknown key (value 1); allowed: one of the keys of"), message
    assert f"did you mean '{suggestion}'?" in message


def test_unknown_key_is_reported_before_the_missing_one_it_misspells(lenet_file: LenetFile) -> None:
    path = lenet_file({"round.start_fl_job_treshold": 2}, removed=["round.start_fl_job_threshold"])
    with pytest.raises(ConfigError, match=r"round\.start_fl_job_treshold: unknown key"):
        load(path)


def test_unknown_section_is_rejected(lenet_file: LenetFile) -> None:
    with pytest.raises(ConfigError, match=r"lenet\.yaml: rounds: unknown key .*did you mean 'round'\?"):
        load(lenet_file({"rounds": {"start_fl_job_threshold": 2}}))
