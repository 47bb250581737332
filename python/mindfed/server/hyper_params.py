"""Adopting the cluster's hyper-parameters (spec §2.10): the first server publishes its YAML's values to Redis, and
every later server, and every server after a `/newInstance`, runs with what Redis holds, whatever its own YAML says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mindfed.config import FLConfig, with_overrides
from mindfed.errors import ConfigError

# hyperParams JSON key → dotted YAML key.
DOTTED: dict[str, str] = {
    "aggregation_type": "aggregation.aggregation_type",
    "iid_rate": "aggregation.iid_rate",
    "total_client_num": "aggregation.total_client_num",
    "fl_iteration_num": "fl_iteration_num",
    "start_fl_job_threshold": "round.start_fl_job_threshold",
    "start_fl_job_time_window": "round.start_fl_job_time_window",
    "update_model_ratio": "round.update_model_ratio",
    "update_model_time_window": "round.update_model_time_window",
    "global_iteration_time_window": "round.global_iteration_time_window",
    "encrypt_type": "encrypt.encrypt_train_type",
    "share_secrets_ratio": "encrypt.pw_encrypt.share_secrets_ratio",
    "cipher_time_window": "encrypt.pw_encrypt.cipher_time_window",
    "reconstruct_secrets_threshold": "encrypt.pw_encrypt.reconstruct_secrets_threshold",
    "dp_eps": "encrypt.dp_encrypt.dp_eps",
    "dp_delta": "encrypt.dp_encrypt.dp_delta",
    "dp_norm_clip": "encrypt.dp_encrypt.dp_norm_clip",
    "sign_k": "encrypt.signds.sign_k",
    "sign_eps": "encrypt.signds.sign_eps",
    "sign_thr_ratio": "encrypt.signds.sign_thr_ratio",
    "sign_global_lr": "encrypt.signds.sign_global_lr",
    "sign_dim_out": "encrypt.signds.sign_dim_out",
    "privacy_eval_type": "encrypt.privacy_eval_type",
    "laplace_eval_eps": "encrypt.laplace_eval.laplace_eval_eps",
    "upload_compress_type": "compression.upload_compress_type",
    "upload_sparse_rate": "compression.upload_sparse_rate",
    "download_compress_type": "compression.download_compress_type",
    "client_epoch_num": "client.client_epoch_num",
    "client_batch_size": "client.client_batch_size",
    "client_learning_rate": "client.client_learning_rate",
}
# Must be equal on every server: a mismatch is a start-up error, not something to adopt.
MUST_MATCH = ("enable_ssl", "pki_verify")
SYNC_FAILED = "Sync hyper params with distributed cache failed"


def adopt(config: FLConfig, cached: Mapping[str, Any], ours: Mapping[str, Any]) -> FLConfig:
    """`config` with the cluster's values (`cached`) in place of this YAML's (`ours`).

    Raises:
        ConfigError: enable_ssl or pki_verify differ from the cluster's ("Sync hyper params with distributed cache
            failed", MindSpore's text), or the cached values are invalid.
    """
    for key in MUST_MATCH:
        if key in cached and cached[key] != ours.get(key):
            raise ConfigError(f"{SYNC_FAILED}: {key} is {ours.get(key)!r} here but {cached[key]!r} in the cluster")
    overrides = {DOTTED[k]: v for k, v in cached.items() if k in DOTTED and v != ours.get(k)}
    return with_overrides(config, overrides) if overrides else config
