"""The counts each PW_ENCRYPT round waits for (spec §4.1), from the round and pw_encrypt sections.

One function so the server's rounds, its timers and `mindfed config check` ("cipher init fail.") agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from mindfed.config import FLConfig
from mindfed.errors import ConfigError

# Round names as MindSpore counts them (the keys of the per-iteration count hash).
EXCHANGE_KEYS, GET_KEYS, SHARE_SECRETS, GET_SECRETS = "exchangeKeys", "getKeys", "shareSecrets", "getSecrets"
GET_CLIENT_LIST, RECONSTRUCT_SECRETS = "getClientList", "reconstructSecrets"
PW_ROUNDS = (EXCHANGE_KEYS, GET_KEYS, SHARE_SECRETS, GET_SECRETS, GET_CLIENT_LIST, RECONSTRUCT_SECRETS)
PUSH_LIST_SIGN, GET_LIST_SIGN = "pushListSign", "getListSign"  # only under client_verify.pki_verify (spec §7.2)
PKI_ROUNDS = (PUSH_LIST_SIGN, GET_LIST_SIGN)
CIPHER_INIT_FAIL = "cipher init fail."  # MindSpore's start-up error for unusable thresholds (cipher_init.cc)


@dataclass(frozen=True, slots=True)
class PwThresholds:
    """Counts per round: E, G, S, getSecrets, L, and t + 1 reconstructors; `t` shares rebuild one secret."""

    exchange_keys: int
    get_keys: int
    share_secrets: int
    get_secrets: int
    get_client_list: int
    reconstruct_secrets: int
    t: int
    push_list_sign: int = 0  # P = max(ceil(L·r), t + 1), pki_verify only
    get_list_sign: int = 0  # max(ceil(P·r), t + 1)

    def of(self, round_name: str) -> int:
        return {EXCHANGE_KEYS: self.exchange_keys, GET_KEYS: self.get_keys, SHARE_SECRETS: self.share_secrets,
                GET_SECRETS: self.get_secrets, GET_CLIENT_LIST: self.get_client_list,
                RECONSTRUCT_SECRETS: self.reconstruct_secrets, PUSH_LIST_SIGN: self.push_list_sign,
                GET_LIST_SIGN: self.get_list_sign}[round_name]


def _ceil_times(count: int, ratio: float) -> int:
    """ceil(count x ratio) on the ratio as written (10 x 0.3 is 3), as round.update_model_threshold computes it."""
    exact = count * Fraction(repr(ratio))
    return -(-exact.numerator // exact.denominator)


def pw_thresholds(cfg: FLConfig) -> PwThresholds:
    """The thresholds of spec §4.1: r = share_secrets_ratio, t = reconstruct_secrets_threshold, T_u the
    updateModel threshold; each cipher round waits for ceil(previous · r), never fewer than T_u devices."""
    pw, rnd = cfg.encrypt.pw_encrypt, cfg.round
    r, t, t_u = pw.share_secrets_ratio, pw.reconstruct_secrets_threshold, rnd.update_model_threshold
    e = max(_ceil_times(rnd.start_fl_job_threshold, r), t_u)
    g = max(_ceil_times(e, r), t_u)
    s = max(_ceil_times(g, r), t_u)
    big_l = max(_ceil_times(t_u, r), t + 1)
    p = max(_ceil_times(big_l, r), t + 1)
    return PwThresholds(exchange_keys=e, get_keys=g, share_secrets=s, get_secrets=max(_ceil_times(s, r), t_u),
                        get_client_list=big_l, reconstruct_secrets=t + 1, t=t, push_list_sign=p,
                        get_list_sign=max(_ceil_times(p, r), t + 1))


def check_pw_thresholds(cfg: FLConfig, source: str = "config") -> list[str]:
    """MindSpore's Check_Parames: the devices sharing secrets must be able to reconstruct them (S >= t + 1).

    Returns warnings for a configuration MindSpore accepts but under which no iteration can succeed (fewer
    updaters than the t + 1 reconstructors getClientList waits for): refusing it would fail MindSpore's own tests.

    Raises:
        ConfigError: "cipher init fail." with the numbers.
    """
    th = pw_thresholds(cfg)
    t_u = cfg.round.update_model_threshold
    if th.share_secrets < th.t + 1:
        raise ConfigError(f"{source}: {CIPHER_INIT_FAIL} encrypt.pw_encrypt.reconstruct_secrets_threshold t={th.t} "
                          f"needs at least t + 1 = {th.t + 1} devices sharing secrets, but shareSecrets waits for "
                          f"{th.share_secrets} (round.start_fl_job_threshold x share_secrets_ratio)")
    if t_u < th.t + 1:
        return [f"{source}: updateModel waits for {t_u} devices but reconstructing secrets needs t + 1 = {th.t + 1} "
                "of them: no PW_ENCRYPT iteration can succeed (raise round.update_model_ratio or lower "
                "encrypt.pw_encrypt.reconstruct_secrets_threshold)"]
    return []
