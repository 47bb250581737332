"""The YAML configuration layer: enums, one frozen dataclass per section, and the loader.

Config is passed explicitly; there is no global config object.
"""

from mindfed.config.enums import (
    AggregationType,
    DownloadCompressType,
    EncryptType,
    EvalType,
    PrivacyEvalType,
    ServerMode,
    UploadCompressType,
)
from mindfed.config.loader import hyper_params, load, loads, parse_override, to_dict, with_overrides
from mindfed.config.schema import (
    AggregationConfig,
    ClientConfig,
    ClientVerifyConfig,
    CompressionConfig,
    DistributedCacheConfig,
    DpEncryptConfig,
    EncryptConfig,
    FLConfig,
    LaplaceEvalConfig,
    PwEncryptConfig,
    RoundConfig,
    SignDsConfig,
    SSLConfig,
    SummaryConfig,
    UnsupervisedConfig,
)

__all__ = [
    "AggregationConfig",
    "AggregationType",
    "ClientConfig",
    "ClientVerifyConfig",
    "CompressionConfig",
    "DistributedCacheConfig",
    "DownloadCompressType",
    "DpEncryptConfig",
    "EncryptConfig",
    "EncryptType",
    "EvalType",
    "FLConfig",
    "LaplaceEvalConfig",
    "PrivacyEvalType",
    "PwEncryptConfig",
    "RoundConfig",
    "SSLConfig",
    "ServerMode",
    "SignDsConfig",
    "SummaryConfig",
    "UnsupervisedConfig",
    "UploadCompressType",
    "hyper_params",
    "load",
    "loads",
    "parse_override",
    "to_dict",
    "with_overrides",
]
