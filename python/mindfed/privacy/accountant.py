"""The privacy a DP_ENCRYPT job has spent, per iteration, and the iteration its budget stops it at (beyond MindSpore).

MindSpore calibrates every device's noise for one (dp_eps, dp_delta) release and never adds the iterations up. Here
each iteration is one step of the sampled Gaussian mechanism:

* noise multiplier z = σ/C = α/√(2·dp_eps) of the analytic Gaussian calibration (independent of the adaptive C);
* sampling rate q = (devices per iteration) / `encrypt.dp_encrypt.dp_population`, where devices per iteration is
  the updateModel threshold ceil(start_fl_job_threshold × update_model_ratio); with no population given (0) q = 1,
  i.e. no amplification by sampling is claimed. Amplification assumes a device's participation is secret to whoever
  sees the released models; the servers themselves see who uploads, so against them only q = 1 holds;
* ε after n iterations: RDP composed over n steps, converted at δ = dp_delta (rdp.py, Balle et al. 2020).

Every iteration counts, failed ones too (devices may have uploaded their noised weights before it failed). The
count restarts with a new instance: the accountant knows one instance's iterations, not the devices' history.
"""

from __future__ import annotations

from dataclasses import dataclass

from mindfed.config import FLConfig
from mindfed.config.enums import EncryptType
from mindfed.errors import ConfigError
from mindfed.privacy.analytic_gaussian import noise_over_clip
from mindfed.privacy.rdp import DEFAULT_ORDERS, compute_rdp, epsilon


@dataclass(frozen=True, slots=True)
class PrivacyAccountant:
    """ε of a DP_ENCRYPT job after n iterations.

    Attributes:
        noise_multiplier: z = σ/C.
        sampling_rate: q, the chance a device takes part in one iteration.
        delta: the δ at which ε is reported (dp_delta).
        budget: the ε the job may spend; 0 means none.
    """

    noise_multiplier: float
    sampling_rate: float
    delta: float
    budget: float = 0.0

    @classmethod
    def from_config(cls, cfg: FLConfig) -> PrivacyAccountant | None:
        """The accountant of `cfg`, or None unless encrypt_train_type is DP_ENCRYPT."""
        if cfg.encrypt.encrypt_train_type != EncryptType.DP_ENCRYPT:
            return None
        dp = cfg.encrypt.dp_encrypt
        per_iteration = cfg.round.update_model_threshold
        if dp.dp_population and dp.dp_population < per_iteration:
            raise ConfigError(f"encrypt.dp_encrypt.dp_population is {dp.dp_population}, fewer than the "
                              f"{per_iteration} devices an iteration takes (ceil(round.start_fl_job_threshold x "
                              "round.update_model_ratio))")
        rate = per_iteration / dp.dp_population if dp.dp_population else 1.0
        return cls(noise_over_clip(dp.dp_eps, dp.dp_delta), rate, dp.dp_delta, dp.dp_eps_budget)

    def epsilon_after(self, iterations: int) -> float:
        """ε spent by `iterations` iterations (0 for none)."""
        if iterations <= 0:
            return 0.0
        return epsilon(compute_rdp(self.sampling_rate, self.noise_multiplier, iterations), self.delta)[0]

    def iterations_within_budget(self, limit: int) -> int:
        """The most iterations, at most `limit`, whose ε stays within the budget (`limit` when there is none)."""
        if not self.budget:
            return limit
        step = compute_rdp(self.sampling_rate, self.noise_multiplier, 1)
        for n in range(1, limit + 1):
            if epsilon([n * r for r in step], self.delta, DEFAULT_ORDERS)[0] > self.budget:
                return n - 1
        return limit

    def exhausted_reason(self, iteration: int) -> str:
        """Why the job stops after `iteration`: the ε the next one would reach."""
        return (f"DP budget exhausted: ε after iteration {iteration + 1} would be "
                f"{self.epsilon_after(iteration + 1):.4g} > budget {self.budget:g}")


def last_iteration(cfg: FLConfig) -> int:
    """The last iteration the job runs: fl_iteration_num, or earlier where the DP budget runs out."""
    accountant = PrivacyAccountant.from_config(cfg)
    if accountant is None:
        return cfg.fl_iteration_num
    return accountant.iterations_within_budget(cfg.fl_iteration_num)


def check_dp_budget(cfg: FLConfig, source: str = "config") -> None:
    """ConfigError when the DP keys cannot work together: a population below one iteration's devices, or a budget
    that not even the first iteration fits in."""
    accountant = PrivacyAccountant.from_config(cfg)
    if accountant is not None and accountant.budget and accountant.iterations_within_budget(1) == 0:
        first = accountant.epsilon_after(1)
        raise ConfigError(f"{source}: encrypt.dp_encrypt.dp_eps_budget is {accountant.budget:g} but one iteration "
                          f"already spends ε = {first:.4g} (noise multiplier {accountant.noise_multiplier:.4g}, "
                          f"sampling rate {accountant.sampling_rate:.4g}, δ = {accountant.delta:g}), so no "
                          "iteration could run: raise the budget or dp_population, or lower dp_eps (more noise)")


def metrics_fields(cfg: FLConfig, iteration: int) -> dict[str, object]:
    """What a metrics.json line of `iteration` says about privacy: nothing unless DP_ENCRYPT; else the ε spent so
    far (`dpEpsilonSpent`, at `dpDelta`), and on the line where the budget stops the job `dpBudgetExhausted`."""
    accountant = PrivacyAccountant.from_config(cfg)
    if accountant is None:
        return {}
    fields: dict[str, object] = {
        "dpEpsilonSpent": round(accountant.epsilon_after(iteration), 6), "dpDelta": accountant.delta,
        "dpNoiseMultiplier": round(accountant.noise_multiplier, 6), "dpSamplingRate": accountant.sampling_rate}
    if accountant.budget:
        fields["dpEpsilonBudget"] = accountant.budget
        if iteration == accountant.iterations_within_budget(cfg.fl_iteration_num) < cfg.fl_iteration_num:
            fields["dpBudgetExhausted"] = accountant.exhausted_reason(iteration)
    return fields
