"""The job's hyper-parameters (spec §2.10), declared once: the YAML key each comes from, its field in the JSON the
first server publishes to Redis, whether a later server may adopt the cluster's value or must match it, and whether
(and how) the scheduler's /newInstance may override it.

Everything else is derived from `HYPER_PARAMS`: the published JSON (`config.loader.hyper_params`), what a server
adopts (`server.hyper_params`) and what /newInstance checks (`scheduler.hyper_params`). Adding a hyper-parameter is
one row here (and its YAML key in the schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any


class NewInstanceCheck(StrEnum):
    """How /newInstance checks an override, as MindSpore's `HyperParams::MergeHyperJsonConfig` does."""

    UNSIGNED = "unsigned"  # an integer in [0, 2**64 - 1]
    POSITIVE = "positive"  # a finite number > 0


@dataclass(frozen=True, slots=True)
class HyperParam:
    """One hyper-parameter.

    Attributes:
        field: its name in the published JSON (and in /newInstance's body and /queryInstance's answer).
        yaml_key: the dotted YAML key it is read from; "" for one derived from others (a property of FLConfig).
        must_match: a server whose YAML differs from the cluster's refuses to start instead of adopting it.
        new_instance: how /newInstance checks an override; None: /newInstance may not set it.
        new_instance_order: its place in MindSpore's order of those checks (the first bad field is the one reported).
    """

    field: str
    yaml_key: str
    must_match: bool = False
    new_instance: NewInstanceCheck | None = None
    new_instance_order: int = 0

    def value(self, cfg: object) -> Any:
        """Its JSON-ready value in `cfg` (an FLConfig): enums as their YAML literals."""
        value = cfg
        for name in (self.yaml_key or self.field).split("."):
            value = getattr(value, name)
        return value.value if isinstance(value, Enum) else value


_U, _P = NewInstanceCheck.UNSIGNED, NewInstanceCheck.POSITIVE
HYPER_PARAMS: tuple[HyperParam, ...] = (
    HyperParam("aggregation_type", "aggregation.aggregation_type"),
    HyperParam("cipher_time_window", "encrypt.pw_encrypt.cipher_time_window"),
    HyperParam("client_batch_size", "client.client_batch_size", new_instance=_U, new_instance_order=7),
    HyperParam("client_epoch_num", "client.client_epoch_num", new_instance=_U, new_instance_order=6),
    HyperParam("client_learning_rate", "client.client_learning_rate", new_instance=_P, new_instance_order=8),
    HyperParam("download_compress_type", "compression.download_compress_type"),
    HyperParam("dp_delta", "encrypt.dp_encrypt.dp_delta"),
    HyperParam("dp_eps", "encrypt.dp_encrypt.dp_eps"),
    HyperParam("dp_eps_budget", "encrypt.dp_encrypt.dp_eps_budget"),  # beyond MindSpore: the accountant's budget
    HyperParam("dp_norm_clip", "encrypt.dp_encrypt.dp_norm_clip"),
    HyperParam("dp_population", "encrypt.dp_encrypt.dp_population"),  # beyond MindSpore: the accountant's q
    HyperParam("enable_ssl", "enable_ssl", must_match=True),
    HyperParam("encrypt_type", "encrypt.encrypt_train_type"),
    HyperParam("fl_iteration_num", "fl_iteration_num", new_instance=_U, new_instance_order=9),
    HyperParam("global_iteration_time_window", "round.global_iteration_time_window", new_instance=_U,
               new_instance_order=1),
    HyperParam("iid_rate", "aggregation.iid_rate"),
    HyperParam("laplace_eval_eps", "encrypt.laplace_eval.laplace_eval_eps"),
    HyperParam("pki_verify", "client_verify.pki_verify", must_match=True),
    HyperParam("privacy_eval_type", "encrypt.privacy_eval_type"),
    HyperParam("reconstruct_secrets_threshold", "encrypt.pw_encrypt.reconstruct_secrets_threshold"),
    HyperParam("secure_aggregation", ""),  # PW_ENCRYPT or STABLE_PW_ENCRYPT: follows encrypt_type
    # beyond MindSpore: DIFF_SPARSE_QUANT under PW_ENCRYPT, masked in a ring (secagg/ring.py); adopted cluster-wide
    HyperParam("secure_compressed_upload", "compression.secure_compressed_upload"),
    HyperParam("secure_quant_bound", "compression.secure_quant_bound"),
    HyperParam("share_secrets_ratio", "encrypt.pw_encrypt.share_secrets_ratio"),
    HyperParam("sign_dim_out", "encrypt.signds.sign_dim_out"),
    HyperParam("sign_eps", "encrypt.signds.sign_eps"),
    HyperParam("sign_global_lr", "encrypt.signds.sign_global_lr"),
    HyperParam("sign_k", "encrypt.signds.sign_k"),
    HyperParam("sign_thr_ratio", "encrypt.signds.sign_thr_ratio"),
    HyperParam("start_fl_job_threshold", "round.start_fl_job_threshold", new_instance=_U, new_instance_order=2),
    HyperParam("start_fl_job_time_window", "round.start_fl_job_time_window", new_instance=_U, new_instance_order=3),
    HyperParam("total_client_num", "aggregation.total_client_num"),
    HyperParam("update_model_ratio", "round.update_model_ratio", new_instance=_P, new_instance_order=4),
    HyperParam("update_model_time_window", "round.update_model_time_window", new_instance=_U, new_instance_order=5),
    HyperParam("upload_compress_type", "compression.upload_compress_type"),
    HyperParam("upload_sparse_rate", "compression.upload_sparse_rate"),
)


def published(cfg: object) -> dict[str, Any]:
    """The flat JSON of spec §2.10 for `cfg` (an FLConfig): every hyper-parameter, keys sorted."""
    return dict(sorted((p.field, p.value(cfg)) for p in HYPER_PARAMS))


def adoptable() -> dict[str, str]:
    """JSON field -> dotted YAML key of the hyper-parameters a server takes from the cluster."""
    return {p.field: p.yaml_key for p in HYPER_PARAMS if p.yaml_key and not p.must_match}


def must_match() -> tuple[str, ...]:
    return tuple(p.field for p in HYPER_PARAMS if p.must_match)


def new_instance_overridable() -> tuple[tuple[str, NewInstanceCheck], ...]:
    """(field, check) of what /newInstance may set, in MindSpore's order of checks."""
    rows = sorted((p for p in HYPER_PARAMS if p.new_instance is not None), key=lambda p: p.new_instance_order)
    return tuple((p.field, p.new_instance) for p in rows if p.new_instance is not None)
