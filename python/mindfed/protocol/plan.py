"""The training plan and cipher parameters the server pushes to devices in ResponseFLJob.

These are plain values: the server fills them from its config (and SignDS state from
Redis); `response_builders.build_response_fl_job` writes them, and the device parser
reads `CipherParams` back.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIME_BYTES = 33
"""Length of PWParams.prime: a big-endian prime, all zeros unless PW_ENCRYPT."""

PW_P_BYTES = 32
"""Length of PWParams.p, which MindSpore always sends as zeros."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FLPlanParams:
    """FLPlan fields MindSpore sets (spec §3.5 step 8); early_stop, aggregation,
    metrics and shuffle are deliberately never written.

    Attributes:
        server_mode: "FEDERATED_LEARNING", "HYBRID_TRAINING" or "CLOUD_TRAINING".
        fl_name: The job name.
        iterations: `fl_iteration_num`.
        epochs: `client.client_epoch_num`.
        mini_batch: `client.client_batch_size`.
        lr: `client.client_learning_rate`.
    """

    server_mode: str
    fl_name: str
    iterations: int
    epochs: int
    mini_batch: int
    lr: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CipherParams:
    """CipherPublicParams with its PWParams, DPParams and DSParams flattened.

    Attributes:
        encrypt_type: "NOT_ENCRYPT", "PW_ENCRYPT", "STABLE_PW_ENCRYPT", "DP_ENCRYPT" or "SIGNDS".
        pw_t: PWParams.t, the Shamir reconstruct threshold.
        pw_prime: PWParams.prime (33 bytes).
        pw_g: PWParams.g (MindSpore sends 1).
        dp_eps, dp_delta, dp_norm_clip: DPParams.
        sign_k, sign_eps, sign_thr_ratio, sign_global_lr, sign_dim_out: DSParams.
        signds_r_est, signds_is_reached: DSParams state of the current iteration.
        laplace_params: `laplace_eval_eps`.
    """

    encrypt_type: str = "NOT_ENCRYPT"
    pw_t: int = 0
    pw_prime: bytes = bytes(PRIME_BYTES)
    pw_g: int = 1
    dp_eps: float = 0.0
    dp_delta: float = 0.0
    dp_norm_clip: float = 0.0
    sign_k: float = 0.0
    sign_eps: float = 0.0
    sign_thr_ratio: float = 0.0
    sign_global_lr: float = 0.0
    sign_dim_out: int = 0
    signds_r_est: float = 0.0
    signds_is_reached: int = 0
    laplace_params: float = 0.0
