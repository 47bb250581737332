"""The whole YAML file as one frozen dataclass, with the checks that span sections.

The per-section classes live in `schema_round`, `schema_encrypt` and `schema_cluster`; they are
re-exported here so callers import every config type from one place.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import ClassVar

from mindfed.config.enums import EncryptType, ServerMode, UploadCompressType
from mindfed.config.key_spec import (
    bool_key,
    enum_key,
    int_key,
    missing_message,
    section,
    str_key,
    validate_fields,
)
from mindfed.config.schema_cluster import (
    TCP_CIPHERS,
    AggregationConfig,
    ClientVerifyConfig,
    DistributedCacheConfig,
    SSLConfig,
)
from mindfed.config.schema_encrypt import (
    NO_UPLOAD_COMPRESSION_TYPES,
    PAIRWISE_TYPES,
    CompressionConfig,
    DpEncryptConfig,
    EncryptConfig,
    LaplaceEvalConfig,
    PwEncryptConfig,
    SignDsConfig,
)
from mindfed.config.schema_round import ClientConfig, RoundConfig, SummaryConfig, UnsupervisedConfig
from mindfed.errors import ConfigError
from mindfed.protocol.codes import MAX_DATA_SIZE
from mindfed.secagg.ring_capacity import CODE_MAX, MAX_DEVICES

__all__ = [
    "AggregationConfig",
    "ClientConfig",
    "ClientVerifyConfig",
    "CompressionConfig",
    "DistributedCacheConfig",
    "DpEncryptConfig",
    "EncryptConfig",
    "FLConfig",
    "LaplaceEvalConfig",
    "PwEncryptConfig",
    "RoundConfig",
    "SSLConfig",
    "SignDsConfig",
    "SummaryConfig",
    "UnsupervisedConfig",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class FLConfig:
    """The whole YAML file: the common keys plus one field per section.

    Attributes:
        fl_name: Job name; the Redis namespace and the checkpoint prefix.
        fl_iteration_num: Iterations per instance.
        server_mode: What the cluster trains with.
        enable_ssl: HTTPS device port, mutual-TLS server TCP, Redis TLS, HTTPS scheduler.
        aggregation: `aggregation:` section.
        distributed_cache: `distributed_cache:` section (required: address).
        round: `round:` section (required: every key).
        summary: `summary:` section.
        unsupervised: `unsupervised:` section.
        encrypt: `encrypt:` section.
        compression: `compression:` section; upload compression is forced to NO_COMPRESS with a
            warning under PW_ENCRYPT and SIGNDS, as MindSpore does, unless compression.secure_compressed_upload
            keeps DIFF_SPARSE_QUANT under PW_ENCRYPT (mindfed-only, masked in a ring).
        ssl: `ssl:` section; its paths and cipher_list are required when enable_ssl.
        client_verify: `client_verify:` section.
        client: `client:` section.
    """

    SECTION: ClassVar[str] = ""

    fl_name: str = str_key(required=True)
    fl_iteration_num: int = int_key(20, lo=1, required=True)
    server_mode: ServerMode = enum_key(ServerMode, required=True)
    enable_ssl: bool = bool_key(required=True)
    aggregation: AggregationConfig = section(AggregationConfig)
    distributed_cache: DistributedCacheConfig = section(DistributedCacheConfig, required=True)
    round: RoundConfig = section(RoundConfig, required=True)
    summary: SummaryConfig = section(SummaryConfig)
    unsupervised: UnsupervisedConfig = section(UnsupervisedConfig)
    encrypt: EncryptConfig = section(EncryptConfig)
    compression: CompressionConfig = section(CompressionConfig)
    ssl: SSLConfig = section(SSLConfig)
    client_verify: ClientVerifyConfig = section(ClientVerifyConfig)
    client: ClientConfig = section(ClientConfig)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)
        if "{" in self.fl_name or "}" in self.fl_name:
            # the Redis keys carry the name in a hash tag, `ms_fl:{<fl_name>}:` (cache/keys.py)
            raise ConfigError(f"fl_name: {self.fl_name!r} has a brace; allowed: a name without '{{' and '}}'")
        if self.enable_ssl:
            _check_ssl(self.ssl)
        if self.client_verify.pki_verify:
            for name in ClientVerifyConfig.REQUIRED_WITH_PKI:
                _require_non_empty(self.client_verify, name, "client_verify.pki_verify is true")
        self._force_upload_compression_off()

    def _force_upload_compression_off(self) -> None:
        encrypt_type = self.encrypt.encrypt_train_type
        upload = self.compression.upload_compress_type
        if self.compression.secure_compressed_upload:
            _check_secure_compressed_upload(self)
            return  # beyond MindSpore: DIFF_SPARSE_QUANT kept under PW_ENCRYPT, masked in a ring (docs/compression.md)
        if encrypt_type in NO_UPLOAD_COMPRESSION_TYPES and upload is not UploadCompressType.NO_COMPRESS:
            logger.warning(
                "compression.upload_compress_type: %s is not supported with "
                "encrypt.encrypt_train_type %s; using NO_COMPRESS",
                upload.value,
                encrypt_type.value,
            )
            forced = dataclasses.replace(self.compression, upload_compress_type=UploadCompressType.NO_COMPRESS)
            object.__setattr__(self, "compression", forced)  # frozen: rewritten once, at construction

    @property
    def secure_aggregation(self) -> bool:
        """True under pairwise masking (PW_ENCRYPT or STABLE_PW_ENCRYPT)."""
        return self.encrypt.encrypt_train_type in PAIRWISE_TYPES


def _check_secure_compressed_upload(cfg: FLConfig) -> None:
    """compression.secure_compressed_upload: true is refused at start-up unless it can be honoured."""
    key = "compression.secure_compressed_upload"
    if cfg.encrypt.encrypt_train_type is not EncryptType.PW_ENCRYPT:
        raise ConfigError(f"{key}: true needs encrypt.encrypt_train_type PW_ENCRYPT, got "
                          f"{cfg.encrypt.encrypt_train_type.value}")
    if cfg.compression.upload_compress_type is not UploadCompressType.DIFF_SPARSE_QUANT:
        raise ConfigError(f"{key}: true needs compression.upload_compress_type DIFF_SPARSE_QUANT")
    # the ring sum of n·c must not wrap: at most MAX_DEVICES (258) devices of the largest data size per iteration
    if cfg.round.start_fl_job_threshold > MAX_DEVICES:
        raise ConfigError(f"{key}: true needs round.start_fl_job_threshold <= {MAX_DEVICES} (the 2^32 ring holds "
                          f"Σ data_size·{CODE_MAX} only up to {MAX_DEVICES} devices of data size {MAX_DATA_SIZE}), "
                          f"got {cfg.round.start_fl_job_threshold}")


def yaml_required_keys(raw: object) -> frozenset[str]:
    """Dotted keys a raw YAML mapping must give because of other keys in it (MindSpore's "required if").

    The pw_encrypt keys are required under PW_ENCRYPT / STABLE_PW_ENCRYPT and the ssl paths and
    cipher_list under enable_ssl. Their dataclass fields have defaults, so only the loader, which sees
    what the file actually says, can enforce this.

    Args:
        raw: The parsed YAML (after overrides), before validation.

    Returns:
        The dotted keys that must be present and non-empty.
    """
    if not isinstance(raw, dict):
        return frozenset()
    keys: set[str] = set()
    encrypt = raw.get("encrypt")
    encrypt_type = encrypt.get("encrypt_train_type") if isinstance(encrypt, dict) else None
    if encrypt_type in {t.value for t in PAIRWISE_TYPES}:
        keys |= {f"encrypt.pw_encrypt.{f.name}" for f in dataclasses.fields(PwEncryptConfig)}
    if raw.get("enable_ssl") is True:
        keys |= {f"ssl.{name}" for name in SSLConfig.REQUIRED_WITH_SSL}
    return frozenset(keys)


def _check_ssl(ssl: SSLConfig) -> None:
    for name in SSLConfig.REQUIRED_WITH_SSL:
        _require_non_empty(ssl, name, "enable_ssl is true")
    unknown = [c for c in ssl.ciphers if c not in TCP_CIPHERS]
    if unknown:
        raise ConfigError(
            f"ssl.cipher_list: {ssl.cipher_list!r} names {', '.join(unknown)}, which server TCP does not "
            f"accept; allowed: a ':'-separated list drawn from {', '.join(TCP_CIPHERS)}"
        )


def _require_non_empty(obj: object, name: str, because: str) -> None:
    value = getattr(obj, name)
    if value == "":
        key = f"{type(obj).SECTION}.{name}"  # type: ignore[attr-defined]
        raise ConfigError(missing_message(key, value, f"a non-empty string when {because}"))
