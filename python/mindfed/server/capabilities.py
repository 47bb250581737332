"""Which YAML modes this build serves. A mode we cannot honour is a start-up error, never silently ignored.

Both compression modes (DIFF_SPARSE_QUANT uploads, QUANT downloads) are served (docs/compression.md), and
enable_ssl (HTTPS through mindfed.tls; the certificate material itself is checked when the server starts).
"""

from __future__ import annotations

import logging

from mindfed.config import FLConfig
from mindfed.config.enums import EncryptType, ServerMode
from mindfed.errors import ConfigError
from mindfed.privacy.accountant import check_dp_budget
from mindfed.secagg.thresholds import check_pw_thresholds

logger = logging.getLogger(__name__)

# HYBRID_TRAINING: server/hybrid.py and the worker package (spec §11.1).
SUPPORTED_SERVER_MODES = frozenset({ServerMode.FEDERATED_LEARNING, ServerMode.HYBRID_TRAINING})
# DP_ENCRYPT is device-side only (spec §7.3): the server just ships DPParams. PW_ENCRYPT: docs/secure-aggregation.md.
# SIGNDS: server/signds_upload.py reconstructs, cache/signds.py adapts r_est (spec §7.4).
SUPPORTED_ENCRYPT = frozenset({EncryptType.NOT_ENCRYPT, EncryptType.DP_ENCRYPT, EncryptType.PW_ENCRYPT,
                               EncryptType.SIGNDS})


def check_supported(cfg: FLConfig, source: str = "config") -> None:
    """Raise ConfigError naming the key when `cfg` asks for a mode this build does not implement yet."""
    unsupported: list[str] = []
    if cfg.server_mode not in SUPPORTED_SERVER_MODES:
        unsupported.append(f"server_mode: {cfg.server_mode} (supported: "
                           + ", ".join(sorted(SUPPORTED_SERVER_MODES)) + ")")
    if cfg.encrypt.encrypt_train_type not in SUPPORTED_ENCRYPT:
        unsupported.append(f"encrypt.encrypt_train_type: {cfg.encrypt.encrypt_train_type} "
                           "(supported: " + ", ".join(sorted(SUPPORTED_ENCRYPT)) + ")")
    if cfg.encrypt.encrypt_train_type == EncryptType.PW_ENCRYPT:
        for warning in check_pw_thresholds(cfg, source):
            logger.warning("%s", warning)
    if unsupported:
        raise ConfigError(f"{source}: not supported by this mindfed build: " + "; ".join(unsupported))
    check_dp_budget(cfg, source)  # a DP budget the first iteration already exceeds could never train
