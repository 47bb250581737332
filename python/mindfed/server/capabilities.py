"""Which YAML modes this build serves. A mode we cannot honour is a start-up error, never silently ignored.

CLOUD_TRAINING (cross-silo workers, spec §11.2) with FedAvg, FedProx, Scaffold and FedNova, and STABLE_PW_ENCRYPT
for its workers (docs/cross-silo.md). Both compression modes (DIFF_SPARSE_QUANT uploads, QUANT downloads) are served
(docs/compression.md), and enable_ssl (HTTPS through mindfed.tls; the certificate material itself is checked when
the server starts).
"""

from __future__ import annotations

import logging

from mindfed.aggregation.rules import SUPPORTED_RULES
from mindfed.config import FLConfig
from mindfed.config.enums import AggregationType, EncryptType, ServerMode, UploadCompressType
from mindfed.errors import ConfigError
from mindfed.privacy.accountant import check_dp_budget
from mindfed.secagg.thresholds import check_pw_thresholds, pw_thresholds

logger = logging.getLogger(__name__)

# HYBRID_TRAINING: server/hybrid.py and the worker package (spec §11.1); CLOUD_TRAINING: cross-silo (spec §11.2).
SUPPORTED_SERVER_MODES = frozenset({ServerMode.FEDERATED_LEARNING, ServerMode.HYBRID_TRAINING,
                                    ServerMode.CLOUD_TRAINING})
# DP_ENCRYPT is device-side only (spec §7.3): the server just ships DPParams. PW_ENCRYPT: docs/secure-aggregation.md.
# SIGNDS: server/signds_upload.py reconstructs, cache/signds.py adapts r_est (spec §7.4).
SUPPORTED_ENCRYPT = frozenset({EncryptType.NOT_ENCRYPT, EncryptType.DP_ENCRYPT, EncryptType.PW_ENCRYPT,
                               EncryptType.SIGNDS, EncryptType.STABLE_PW_ENCRYPT})
# CLOUD_TRAINING workers (worker/cross_silo.py, MindSpore's cloud worker) apply only these (SUPPORT_ENC_TYPES_CLOUD);
# STABLE_PW_ENCRYPT, in turn, has no device implementation (Java or ours): it is the workers' mode only.
CLOUD_ENCRYPT = frozenset({EncryptType.NOT_ENCRYPT, EncryptType.STABLE_PW_ENCRYPT})


def check_supported(cfg: FLConfig, source: str = "config") -> None:
    """Raise ConfigError naming the key when `cfg` asks for a mode this build does not implement yet."""
    unsupported: list[str] = []
    if cfg.server_mode not in SUPPORTED_SERVER_MODES:
        unsupported.append(f"server_mode: {cfg.server_mode} (supported: "
                           + ", ".join(sorted(SUPPORTED_SERVER_MODES)) + ")")
    if cfg.encrypt.encrypt_train_type not in SUPPORTED_ENCRYPT:
        unsupported.append(f"encrypt.encrypt_train_type: {cfg.encrypt.encrypt_train_type} "
                           "(supported: " + ", ".join(sorted(SUPPORTED_ENCRYPT)) + ")")
    unsupported += cloud_training_problems(cfg)
    if cfg.encrypt.encrypt_train_type == EncryptType.PW_ENCRYPT:
        for warning in check_pw_thresholds(cfg, source):
            logger.warning("%s", warning)
    if unsupported:
        raise ConfigError(f"{source}: not supported by this mindfed build: " + "; ".join(unsupported))
    check_dp_budget(cfg, source)  # a DP budget the first iteration already exceeds could never train


def cloud_training_problems(cfg: FLConfig) -> list[str]:
    """What CLOUD_TRAINING (cross-silo workers) and its aggregation types cannot honour (spec §11.2)."""
    cloud = cfg.server_mode == ServerMode.CLOUD_TRAINING
    kind, encrypt = cfg.aggregation.aggregation_type, cfg.encrypt.encrypt_train_type
    problems: list[str] = []
    if kind not in SUPPORTED_RULES:
        problems.append(f"aggregation.aggregation_type: {kind} (supported: " + ", ".join(sorted(SUPPORTED_RULES))
                        + ")")
    elif kind != AggregationType.FED_AVG and not cloud:
        problems.append(f"aggregation.aggregation_type: {kind} needs server_mode CLOUD_TRAINING (devices aggregate "
                        "with FedAvg only)")
    if encrypt == EncryptType.STABLE_PW_ENCRYPT and not cloud:
        problems.append("encrypt.encrypt_train_type: STABLE_PW_ENCRYPT needs server_mode CLOUD_TRAINING (it is the "
                        "cross-silo workers' masking; devices use PW_ENCRYPT)")
    if not cloud:
        return problems
    if encrypt not in CLOUD_ENCRYPT:
        problems.append(f"encrypt.encrypt_train_type: {encrypt} under CLOUD_TRAINING (workers apply only "
                        + ", ".join(sorted(CLOUD_ENCRYPT)) + ")")
    if cfg.compression.upload_compress_type != UploadCompressType.NO_COMPRESS:
        problems.append(f"compression.upload_compress_type: {cfg.compression.upload_compress_type} under "
                        "CLOUD_TRAINING (workers upload plain weights)")
    if cfg.client_verify.pki_verify:
        problems.append("client_verify.pki_verify under CLOUD_TRAINING (workers carry no device certificates)")
    if encrypt == EncryptType.STABLE_PW_ENCRYPT:
        th, t_u = pw_thresholds(cfg), cfg.round.update_model_threshold
        if th.exchange_keys != t_u:
            problems.append(f"STABLE_PW_ENCRYPT: exchangeKeys waits for {th.exchange_keys} workers but updateModel "
                            f"for {t_u}: the masks cancel only if every worker that exchanged keys uploads (set "
                            "round.update_model_ratio and encrypt.pw_encrypt.share_secrets_ratio to 1.0)")
    return problems
