"""Section defaults, derived values and the rules that span keys or sections."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from mindfed.config import (
    AggregationConfig,
    AggregationType,
    ClientConfig,
    ClientVerifyConfig,
    CompressionConfig,
    DistributedCacheConfig,
    DownloadCompressType,
    DpEncryptConfig,
    EncryptConfig,
    EncryptType,
    EvalType,
    LaplaceEvalConfig,
    PrivacyEvalType,
    PwEncryptConfig,
    RoundConfig,
    SignDsConfig,
    SSLConfig,
    SummaryConfig,
    UnsupervisedConfig,
    UploadCompressType,
    load,
    loads,
)
from mindfed.errors import ConfigError

LenetFile = Callable[..., Path]

MINIMAL_YAML = """\
fl_name: Tiny
fl_iteration_num: 3
server_mode: FEDERATED_LEARNING
enable_ssl: false
distributed_cache:
  address: ""
round:
  start_fl_job_threshold: 2
  start_fl_job_time_window: 1000
  update_model_ratio: 1
  update_model_time_window: 1000
  global_iteration_time_window: 5000
summary:
  metrics_file: m.json
  failure_event_file: e.txt
"""


def _round(threshold: int = 2, ratio: float = 1.0) -> RoundConfig:
    return RoundConfig(
        start_fl_job_threshold=threshold,
        start_fl_job_time_window=30000,
        update_model_ratio=ratio,
        update_model_time_window=20000,
        global_iteration_time_window=60000,
    )


def test_minimal_yaml_gets_mindspore_defaults_for_every_section() -> None:
    # Execute
    cfg = loads(MINIMAL_YAML, "tiny.yaml")
    # Assert
    assert cfg.aggregation == AggregationConfig(
        aggregation_type=AggregationType.FED_AVG, iid_rate=0.0, total_client_num=1
    )
    assert cfg.summary == SummaryConfig(
        metrics_file="m.json", failure_event_file="e.txt", continuous_failure_times=10,
        data_rate_dir="", participation_time_level="5,15",
    )  # fmt: skip
    assert cfg.unsupervised == UnsupervisedConfig(cluster_client_num=0, eval_type=EvalType.NOT_EVAL)
    assert cfg.encrypt.encrypt_train_type is EncryptType.NOT_ENCRYPT
    assert cfg.encrypt.privacy_eval_type is PrivacyEvalType.NOT_ENCRYPT
    assert cfg.encrypt.pw_encrypt == PwEncryptConfig(
        share_secrets_ratio=1.0, cipher_time_window=1, reconstruct_secrets_threshold=1
    )
    assert cfg.encrypt.dp_encrypt == DpEncryptConfig(dp_eps=50.0, dp_delta=0.01, dp_norm_clip=1.0)
    assert cfg.encrypt.signds == SignDsConfig(
        sign_k=0.01, sign_eps=100.0, sign_thr_ratio=0.6, sign_global_lr=0.1, sign_dim_out=0
    )
    assert cfg.encrypt.laplace_eval == LaplaceEvalConfig(laplace_eval_eps=100.0)
    assert cfg.compression == CompressionConfig(
        upload_compress_type=UploadCompressType.NO_COMPRESS, upload_sparse_rate=0.4,
        download_compress_type=DownloadCompressType.NO_COMPRESS,
    )  # fmt: skip
    assert cfg.ssl == SSLConfig(
        server_cert_path="", client_cert_path="", ca_cert_path="", crl_path="", cipher_list="",
        cert_expire_warning_time_in_day=90,
    )  # fmt: skip
    assert cfg.client_verify == ClientVerifyConfig(
        pki_verify=False, root_first_ca_path="", root_second_ca_path="", equip_crl_path="",
        replay_attack_time_diff=600000,
    )  # fmt: skip
    assert cfg.client == ClientConfig(
        http_url_prefix="", client_epoch_num=25, client_batch_size=32, client_learning_rate=0.001,
        connection_num=10000,
    )  # fmt: skip
    assert cfg.distributed_cache.type == "redis"
    assert cfg.round.update_model_ratio == 1.0
    assert isinstance(cfg.round.update_model_ratio, float)


def test_sections_are_frozen_and_slotted() -> None:
    cfg = loads(MINIMAL_YAML, "tiny.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.round.start_fl_job_threshold = 5  # type: ignore[misc]
    assert not hasattr(cfg.round, "__dict__")


@pytest.mark.parametrize(
    ("threshold", "ratio", "expected"),
    [(2, 1.0, 2), (10, 0.3, 3), (7, 0.5, 4), (3, 0.34, 2), (100, 0.07, 7), (1, 0.01, 1), (9, 1 / 3, 3)],
)
def test_update_model_threshold_is_the_exact_ceiling(threshold: int, ratio: float, expected: int) -> None:
    assert _round(threshold, ratio).update_model_threshold == expected


def test_iteration_time_window_adds_six_cipher_windows_only_under_pw() -> None:
    # Prepare
    rnd = _round()
    pw = PwEncryptConfig(cipher_time_window=3000)
    # Execute / Assert
    assert rnd.iteration_time_window_ms() == 50000
    assert rnd.iteration_time_window_ms(EncryptConfig(pw_encrypt=pw)) == 50000
    pw_encrypt = EncryptConfig(encrypt_train_type=EncryptType.PW_ENCRYPT, pw_encrypt=pw)
    assert rnd.iteration_time_window_ms(pw_encrypt) == 50000 + 6 * 3000


def test_direct_construction_is_validated_and_typed() -> None:
    # Execute: an int ratio becomes a float, a literal becomes the enum member
    rnd = _round(ratio=1)
    enc = EncryptConfig(encrypt_train_type="SIGNDS")  # type: ignore[arg-type]
    # Assert
    assert isinstance(rnd.update_model_ratio, float)
    assert enc.encrypt_train_type is EncryptType.SIGNDS
    with pytest.raises(ConfigError, match=r"^round\.update_model_ratio: 1\.5 is out of range"):
        _round(ratio=1.5)
    with pytest.raises(ConfigError, match=r"^client\.client_batch_size: True has type bool"):
        ClientConfig(client_batch_size=True)


@pytest.mark.parametrize(
    ("address", "embedded", "host", "port", "unix_path"),
    [
        ("127.0.0.1:23456", False, "127.0.0.1", 23456, ""),
        ("redis.local:6379", False, "redis.local", 6379, ""),
        ("[::1]:6380", False, "::1", 6380, ""),
        ("::1:6380", False, "::1", 6380, ""),  # taken before there was one parser; redis-py connects to it
        ("my_redis:6379", False, "my_redis", 6379, ""),  # a Docker Compose service name
        ("unix:/tmp/redis.sock", False, "", 0, "/tmp/redis.sock"),
        ("", True, "", 0, ""),
        ("embedded", True, "", 0, ""),
    ],
)
def test_cache_address_forms(address: str, embedded: bool, host: str, port: int, unix_path: str) -> None:
    cache = DistributedCacheConfig(address=address)
    assert (cache.is_embedded, cache.host, cache.port, cache.unix_path) == (embedded, host, port, unix_path)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":6379", "h:port", "unix:"])
def test_malformed_cache_address_is_rejected(lenet_file: LenetFile, address: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(lenet_file({"distributed_cache.address": address}))
    assert f"lenet.yaml: distributed_cache.address: {address!r}" in str(err.value)
    assert "allowed: " in str(err.value)


@pytest.mark.parametrize("level", ["15,5", "0,15", "5,2881", "5", "a,b", "5,15,30", "5,5"])
def test_bad_participation_level_falls_back_with_a_warning(
    lenet_file: LenetFile, caplog: pytest.LogCaptureFixture, level: str
) -> None:
    # Execute
    with caplog.at_level(logging.WARNING, logger="mindfed.config"):
        cfg = load(lenet_file({"summary.participation_time_level": level}))
    # Assert
    assert cfg.summary.participation_time_level == "5,15"
    assert cfg.summary.participation_time_levels == (5, 15)
    assert "summary.participation_time_level" in caplog.text
    assert repr(level) in caplog.text


def test_good_participation_level_is_kept(lenet_file: LenetFile) -> None:
    cfg = load(lenet_file({"summary.participation_time_level": "1,2880"}))
    assert cfg.summary.participation_time_levels == (1, 2880)


@pytest.mark.parametrize("encrypt_type", ["PW_ENCRYPT", "SIGNDS"])
def test_upload_compression_is_forced_off_under_pw_and_signds(
    lenet_file: LenetFile, caplog: pytest.LogCaptureFixture, encrypt_type: str
) -> None:
    # Prepare
    path = lenet_file(
        {"encrypt.encrypt_train_type": encrypt_type, "compression.upload_compress_type": "DIFF_SPARSE_QUANT"}
    )
    # Execute
    with caplog.at_level(logging.WARNING, logger="mindfed.config"):
        cfg = load(path)
    # Assert
    assert cfg.compression.upload_compress_type is UploadCompressType.NO_COMPRESS
    assert "DIFF_SPARSE_QUANT" in caplog.text
    assert encrypt_type in caplog.text


@pytest.mark.parametrize("encrypt_type", ["NOT_ENCRYPT", "STABLE_PW_ENCRYPT", "DP_ENCRYPT"])
def test_upload_compression_is_kept_otherwise(lenet_file: LenetFile, encrypt_type: str) -> None:
    path = lenet_file(
        {"encrypt.encrypt_train_type": encrypt_type, "compression.upload_compress_type": "DIFF_SPARSE_QUANT"}
    )
    assert load(path).compression.upload_compress_type is UploadCompressType.DIFF_SPARSE_QUANT


def test_eval_type_needs_a_positive_cluster_client_num(lenet_file: LenetFile) -> None:
    # Execute / Assert
    with pytest.raises(ConfigError) as err:
        load(lenet_file({"unsupervised.cluster_client_num": 0}))
    message = str(err.value)
    assert "lenet.yaml: unsupervised.cluster_client_num: 0 is out of range" in message
    assert "allowed: an int >= 1 when unsupervised.eval_type is SILHOUETTE_SCORE" in message
    cfg = load(lenet_file({"unsupervised.cluster_client_num": 0, "unsupervised.eval_type": "NOT_EVAL"}))
    assert cfg.unsupervised.cluster_client_num == 0


@pytest.mark.parametrize("encrypt_type", ["PW_ENCRYPT", "STABLE_PW_ENCRYPT"])
@pytest.mark.parametrize(
    "key",
    [
        "encrypt.pw_encrypt.share_secrets_ratio",
        "encrypt.pw_encrypt.cipher_time_window",
        "encrypt.pw_encrypt.reconstruct_secrets_threshold",
    ],
)
def test_pw_keys_are_required_under_pairwise_masking(lenet_file: LenetFile, encrypt_type: str, key: str) -> None:
    path = lenet_file({"encrypt.encrypt_train_type": encrypt_type}, removed=[key])
    with pytest.raises(ConfigError, match=rf"lenet\.yaml: {key}: no value given.*'{key}' is missing"):
        load(path)


def test_pw_keys_are_optional_without_pairwise_masking(lenet_file: LenetFile) -> None:
    cfg = load(lenet_file(removed=["encrypt.pw_encrypt"]))
    assert cfg.encrypt.pw_encrypt == PwEncryptConfig()


@pytest.mark.parametrize("key", ["ssl.server_cert_path", "ssl.client_cert_path", "ssl.ca_cert_path", "ssl.cipher_list"])
def test_ssl_keys_are_required_only_with_enable_ssl(lenet_file: LenetFile, key: str) -> None:
    # Execute / Assert: fine without TLS...
    assert load(lenet_file(removed=[key])).enable_ssl is False
    # ...missing with it, whether absent or ""
    with pytest.raises(ConfigError, match=rf"lenet\.yaml: {key}: no value given; allowed: a non-empty string"):
        load(lenet_file({"enable_ssl": True}, removed=[key]))
    with pytest.raises(ConfigError, match=rf"{key}: '' is empty, which counts as missing"):
        load(lenet_file({"enable_ssl": True, key: ""}))


def test_seed_ssl_section_is_valid_with_enable_ssl(lenet_file: LenetFile) -> None:
    cfg = load(lenet_file({"enable_ssl": True}))
    assert len(cfg.ssl.ciphers) == 9


def test_cipher_outside_the_tcp_allow_list_is_rejected(lenet_file: LenetFile) -> None:
    path = lenet_file({"enable_ssl": True, "ssl.cipher_list": "ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA"})
    with pytest.raises(ConfigError, match=r"lenet\.yaml: ssl\.cipher_list: .* names DES-CBC3-SHA.*allowed: "):
        load(path)


def test_pki_verify_needs_both_root_cas(lenet_file: LenetFile) -> None:
    with pytest.raises(ConfigError, match=r"client_verify\.root_first_ca_path: '' is empty.*when client_verify"):
        load(lenet_file({"client_verify.pki_verify": True}))
    cfg = load(
        lenet_file(
            {
                "client_verify.pki_verify": True,
                "client_verify.root_first_ca_path": "root.pem",
                "client_verify.root_second_ca_path": "root_g2.pem",
            }
        )
    )
    assert cfg.client_verify.pki_verify is True


def test_optional_zero_sentinels_accept_valid_values(lenet_file: LenetFile) -> None:
    cfg = load(lenet_file({"aggregation.iid_rate": 1, "aggregation.total_client_num": 10}))
    assert (cfg.aggregation.iid_rate, cfg.aggregation.total_client_num) == (1.0, 10)


def test_secure_compressed_upload_keeps_diff_sparse_quant_under_pw_encrypt(lenet_file: LenetFile) -> None:
    cfg = load(lenet_file({"encrypt.encrypt_train_type": "PW_ENCRYPT", "compression.secure_compressed_upload": True,
                           "compression.upload_compress_type": "DIFF_SPARSE_QUANT",
                           "round.start_fl_job_threshold": 258}))
    assert cfg.compression.upload_compress_type is UploadCompressType.DIFF_SPARSE_QUANT  # not forced off


def test_secure_compressed_upload_defaults_to_mindspores_behaviour(lenet_file: LenetFile) -> None:
    cfg = load(lenet_file({"encrypt.encrypt_train_type": "PW_ENCRYPT",
                           "compression.upload_compress_type": "DIFF_SPARSE_QUANT"}))
    assert cfg.compression.secure_compressed_upload is False
    assert cfg.compression.upload_compress_type is UploadCompressType.NO_COMPRESS  # forced off, as MindSpore


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"encrypt.encrypt_train_type": "NOT_ENCRYPT", "compression.upload_compress_type": "DIFF_SPARSE_QUANT"},
     "needs encrypt.encrypt_train_type PW_ENCRYPT"),
    ({"encrypt.encrypt_train_type": "PW_ENCRYPT"}, "needs compression.upload_compress_type DIFF_SPARSE_QUANT"),
    ({"encrypt.encrypt_train_type": "PW_ENCRYPT", "compression.upload_compress_type": "DIFF_SPARSE_QUANT",
      "round.start_fl_job_threshold": 259}, "start_fl_job_threshold <= 258"),
])
def test_secure_compressed_upload_that_cannot_be_honoured_fails_at_start(
    lenet_file: LenetFile, overrides: dict[str, object], reason: str
) -> None:
    path = lenet_file({"compression.secure_compressed_upload": True, **overrides})
    with pytest.raises(ConfigError, match=reason):
        load(path)
