"""Mode strings of the YAML config; each StrEnum's values are exactly the YAML literals MindSpore accepts."""

from __future__ import annotations

from enum import StrEnum


class ServerMode(StrEnum):
    """Top-level `server_mode`: what the server cluster trains with."""

    FEDERATED_LEARNING = "FEDERATED_LEARNING"
    HYBRID_TRAINING = "HYBRID_TRAINING"
    CLOUD_TRAINING = "CLOUD_TRAINING"


class AggregationType(StrEnum):
    """`aggregation.aggregation_type` (only meaningful in CLOUD_TRAINING); values keep MindSpore's casing."""

    FED_AVG = "FedAvg"
    FED_PROX = "FedProx"
    SCAFFOLD = "Scaffold"
    FED_NOVA = "FedNova"
    FED_CM = "FedCM"


class EncryptType(StrEnum):
    """`encrypt.encrypt_train_type`: how device updates are protected."""

    NOT_ENCRYPT = "NOT_ENCRYPT"
    PW_ENCRYPT = "PW_ENCRYPT"
    STABLE_PW_ENCRYPT = "STABLE_PW_ENCRYPT"
    DP_ENCRYPT = "DP_ENCRYPT"
    SIGNDS = "SIGNDS"


class PrivacyEvalType(StrEnum):
    """`encrypt.privacy_eval_type`: noise on the unsupervised-evaluation vectors devices upload."""

    NOT_ENCRYPT = "NOT_ENCRYPT"
    LAPLACE = "LAPLACE"


class UploadCompressType(StrEnum):
    """`compression.upload_compress_type`: device-to-server update encoding."""

    NO_COMPRESS = "NO_COMPRESS"
    DIFF_SPARSE_QUANT = "DIFF_SPARSE_QUANT"


class DownloadCompressType(StrEnum):
    """`compression.download_compress_type`: server-to-device model encoding."""

    NO_COMPRESS = "NO_COMPRESS"
    QUANT = "QUANT"


class EvalType(StrEnum):
    """`unsupervised.eval_type`: the clustering score the master computes from device eval vectors."""

    NOT_EVAL = "NOT_EVAL"
    SILHOUETTE_SCORE = "SILHOUETTE_SCORE"
    CALINSKI_HARABASZ_SCORE = "CALINSKI_HARABASZ_SCORE"
    DAVIES_BOULDIN_SCORE = "DAVIES_BOULDIN_SCORE"
