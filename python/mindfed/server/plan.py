"""The FLPlan and cipher parameters a server announces in startFLJob, from its config (spec §3.5 step 8)."""

from __future__ import annotations

from mindfed.cache.signds import SignDSParams
from mindfed.config import FLConfig
from mindfed.privacy.signds_rate import INITIAL_R_EST
from mindfed.protocol.plan import PRIME_BYTES, CipherParams, FLPlanParams

# SignDS' initial r_est before any adaptation (spec §7.4).
SIGNDS_INITIAL_R_EST = INITIAL_R_EST


def fl_plan(cfg: FLConfig) -> FLPlanParams:
    return FLPlanParams(server_mode=str(cfg.server_mode), fl_name=cfg.fl_name, iterations=cfg.fl_iteration_num,
                        epochs=cfg.client.client_epoch_num, mini_batch=cfg.client.client_batch_size,
                        lr=cfg.client.client_learning_rate)


def cipher_params(cfg: FLConfig, pw_prime: bytes = b"", signds: SignDSParams | None = None) -> CipherParams:
    """CipherPublicParams; `pw_prime` is the cluster's prime under PW_ENCRYPT (zeros otherwise, as MindSpore),
    `signds` the iteration's SignDS state (cache/signds.py), the initial one if None."""
    enc = cfg.encrypt
    signds = signds or SignDSParams(SIGNDS_INITIAL_R_EST, 0)
    return CipherParams(
        encrypt_type=str(enc.encrypt_train_type),
        pw_t=enc.pw_encrypt.reconstruct_secrets_threshold,
        pw_prime=pw_prime or bytes(PRIME_BYTES),
        dp_eps=enc.dp_encrypt.dp_eps, dp_delta=enc.dp_encrypt.dp_delta, dp_norm_clip=enc.dp_encrypt.dp_norm_clip,
        sign_k=enc.signds.sign_k, sign_eps=enc.signds.sign_eps, sign_thr_ratio=enc.signds.sign_thr_ratio,
        sign_global_lr=enc.signds.sign_global_lr, sign_dim_out=enc.signds.sign_dim_out,
        signds_r_est=signds.r_est, signds_is_reached=signds.is_reached,
        laplace_params=enc.laplace_eval.laplace_eval_eps,
    )
