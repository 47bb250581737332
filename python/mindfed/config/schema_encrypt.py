"""Sections that protect or shrink device updates: `encrypt:` (with its sub-sections) and `compression:`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mindfed.config.enums import (
    DownloadCompressType,
    EncryptType,
    PrivacyEvalType,
    UploadCompressType,
)
from mindfed.config.key_spec import bool_key, enum_key, float_key, int_key, section, validate_fields

# MindSpore requires the pw_encrypt keys in the YAML only under these types.
PAIRWISE_TYPES = frozenset({EncryptType.PW_ENCRYPT, EncryptType.STABLE_PW_ENCRYPT})
# Compressed uploads cannot be unmasked (PW) or are already one bit per dimension (SignDS), so
# MindSpore forces NO_COMPRESS under these types (CheckYamlConfig); STABLE_PW is not in its list.
NO_UPLOAD_COMPRESSION_TYPES = frozenset({EncryptType.PW_ENCRYPT, EncryptType.SIGNDS})


@dataclass(frozen=True, slots=True, kw_only=True)
class PwEncryptConfig:
    """`encrypt.pw_encrypt`: pairwise masking with Shamir-shared seeds (required under PW/STABLE_PW).

    Attributes:
        share_secrets_ratio: Fraction of the previous cipher round's clients each next round waits for.
        cipher_time_window: Timer of each cipher round, ms.
        reconstruct_secrets_threshold: Shamir threshold t; t + 1 shares reconstruct a secret.
    """

    SECTION: ClassVar[str] = "encrypt.pw_encrypt"

    share_secrets_ratio: float = float_key(1.0, lo=0.0, hi=1.0, lo_open=True)
    cipher_time_window: int = int_key(1, lo=1)
    reconstruct_secrets_threshold: int = int_key(1, lo=1)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)


@dataclass(frozen=True, slots=True, kw_only=True)
class DpEncryptConfig:
    """`encrypt.dp_encrypt`: client-side Gaussian DP parameters the server ships to devices.

    Attributes:
        dp_eps: Privacy budget epsilon.
        dp_delta: Privacy budget delta.
        dp_norm_clip: Factor of the adaptive L2 clipping bound: after an iteration a device's bound becomes
            dp_norm_clip x the L2 norm of the global model's move (spec §7.3).
        dp_population: Beyond MindSpore: how many devices the job samples from, for the privacy accountant's
            sampling rate q = (ceil(start_fl_job_threshold x update_model_ratio)) / dp_population; 0 (the
            default) = unknown, q = 1 (no amplification by sampling claimed).
        dp_eps_budget: Beyond MindSpore: the ε (at δ = dp_delta) the whole job may spend; the servers finish the
            job before the iteration that would exceed it. 0 (the default) = no budget.
    """

    SECTION: ClassVar[str] = "encrypt.dp_encrypt"

    dp_eps: float = float_key(50.0, lo=0.0, lo_open=True)
    dp_delta: float = float_key(0.01, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    dp_norm_clip: float = float_key(1.0, lo=0.0, lo_open=True)
    dp_population: int = int_key(0, lo=1, unset=0)
    dp_eps_budget: float = float_key(0.0, lo=0.0, lo_open=True, unset=0.0)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignDsConfig:
    """`encrypt.signds`: SignDS dimension selection with sign.

    Attributes:
        sign_k: Fraction of top dimensions a client considers.
        sign_eps: Privacy budget of the selection.
        sign_thr_ratio: Threshold ratio of the expected top-k hits.
        sign_global_lr: Server step size applied to the aggregated signs.
        sign_dim_out: Dimensions a client outputs; 0 lets the client pick the optimum.
    """

    SECTION: ClassVar[str] = "encrypt.signds"

    sign_k: float = float_key(0.01, lo=0.0, hi=0.25, lo_open=True)
    sign_eps: float = float_key(100.0, lo=0.0, hi=100.0, lo_open=True)
    sign_thr_ratio: float = float_key(0.6, lo=0.5, hi=1.0)
    sign_global_lr: float = float_key(0.1, lo=0.0, lo_open=True)
    sign_dim_out: int = int_key(0, lo=0, hi=50)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)


@dataclass(frozen=True, slots=True, kw_only=True)
class LaplaceEvalConfig:
    """`encrypt.laplace_eval`: Laplace noise on unsupervised-eval vectors (privacy_eval_type LAPLACE).

    Attributes:
        laplace_eval_eps: Privacy budget; devices add Laplace(0, 1 / laplace_eval_eps).
    """

    SECTION: ClassVar[str] = "encrypt.laplace_eval"

    laplace_eval_eps: float = float_key(100.0, lo=0.0, hi=500000.0, lo_open=True)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)


@dataclass(frozen=True, slots=True, kw_only=True)
class EncryptConfig:
    """The `encrypt:` section. Every sub-section is validated whatever the type, so a typo cannot hide.

    Attributes:
        encrypt_train_type: How device updates are protected.
        pw_encrypt: Pairwise-masking parameters.
        dp_encrypt: Differential-privacy parameters.
        signds: SignDS parameters.
        privacy_eval_type: Noise on unsupervised-eval vectors.
        laplace_eval: Laplace-eval parameters.
    """

    SECTION: ClassVar[str] = "encrypt"

    encrypt_train_type: EncryptType = enum_key(EncryptType, EncryptType.NOT_ENCRYPT)
    pw_encrypt: PwEncryptConfig = section(PwEncryptConfig)
    dp_encrypt: DpEncryptConfig = section(DpEncryptConfig)
    signds: SignDsConfig = section(SignDsConfig)
    privacy_eval_type: PrivacyEvalType = enum_key(PrivacyEvalType, PrivacyEvalType.NOT_ENCRYPT)
    laplace_eval: LaplaceEvalConfig = section(LaplaceEvalConfig)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)

    @property
    def secure_aggregation(self) -> bool:
        """True under pairwise masking (PW_ENCRYPT or STABLE_PW_ENCRYPT)."""
        return self.encrypt_train_type in PAIRWISE_TYPES


@dataclass(frozen=True, slots=True, kw_only=True)
class CompressionConfig:
    """The `compression:` section. Upload compression is forced off under PW_ENCRYPT and SIGNDS (see FLConfig), unless
    secure_compressed_upload keeps it under PW_ENCRYPT.

    Attributes:
        upload_compress_type: Device-to-server update encoding.
        upload_sparse_rate: Fraction of weights kept by DIFF_SPARSE_QUANT.
        download_compress_type: Server-to-device model encoding.
        secure_compressed_upload: Beyond MindSpore: keep DIFF_SPARSE_QUANT under PW_ENCRYPT, the integer codes
            masked in the ring Z/2^32 (secagg/ring.py). False (default): MindSpore's behaviour, compression forced
            off under PW_ENCRYPT. MindSpore's Java devices cannot take part in a job with it on.
        secure_quant_bound: The shared quantisation grid [-B, B] of a secure compressed upload: every device clips
            its per-coordinate difference w_new - w_old to it (255 levels: the quantisation step is 2B/254).
    """

    SECTION: ClassVar[str] = "compression"

    upload_compress_type: UploadCompressType = enum_key(UploadCompressType, UploadCompressType.NO_COMPRESS)
    upload_sparse_rate: float = float_key(0.4, lo=0.0, hi=1.0, lo_open=True)
    download_compress_type: DownloadCompressType = enum_key(DownloadCompressType, DownloadCompressType.NO_COMPRESS)
    secure_compressed_upload: bool = bool_key(False)
    secure_quant_bound: float = float_key(0.05, lo=0.0, hi=1e6, lo_open=True)

    def __post_init__(self) -> None:
        validate_fields(self, self.SECTION)
