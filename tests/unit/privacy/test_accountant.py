"""The job-level accountant: q and z from the config, ε per iteration, the budget's stop, and `mindfed config check`
refusing DP keys that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindfed.cli.config_check import main
from mindfed.cli.exit_codes import CONFIG_ERROR, OK
from mindfed.config import FLConfig, load
from mindfed.errors import ConfigError
from mindfed.privacy.accountant import PrivacyAccountant, check_dp_budget, last_iteration, metrics_fields
from mindfed.privacy.analytic_gaussian import noise_over_clip
from mindfed.privacy.rdp import compute_rdp, epsilon

SEED_YAML = Path(__file__).resolve().parents[3] / "yamls" / "lenet.yaml"


def dp_config(**dp: object) -> FLConfig:
    overrides: dict[str, object] = {"encrypt.encrypt_train_type": "DP_ENCRYPT", "fl_iteration_num": 30,
                                    "round.start_fl_job_threshold": 4, "round.update_model_ratio": 0.5,
                                    "encrypt.dp_encrypt.dp_eps": 1.0, "encrypt.dp_encrypt.dp_delta": 1e-5}
    overrides.update({f"encrypt.dp_encrypt.{key}": value for key, value in dp.items()})
    return load(SEED_YAML, overrides)


def test_q_and_z_come_from_the_config() -> None:
    accountant = PrivacyAccountant.from_config(dp_config(dp_population=40))
    assert accountant is not None
    assert accountant.sampling_rate == 2 / 40  # ceil(4 x 0.5) devices per iteration out of 40
    assert accountant.noise_multiplier == pytest.approx(noise_over_clip(1.0, 1e-5))
    assert accountant.epsilon_after(7) == epsilon(compute_rdp(0.05, accountant.noise_multiplier, 7), 1e-5)[0]
    unknown = PrivacyAccountant.from_config(dp_config())
    assert unknown is not None
    assert unknown.sampling_rate == 1.0  # dp_population 0: no amplification claimed
    assert PrivacyAccountant.from_config(load(SEED_YAML)) is None  # NOT_ENCRYPT: nothing to account


def test_the_budget_stops_before_the_iteration_that_would_exceed_it() -> None:
    cfg = dp_config(dp_eps_budget=1.5)  # q = 1, z ≈ 3.74: each iteration adds a little
    accountant = PrivacyAccountant.from_config(cfg)
    assert accountant is not None
    last = last_iteration(cfg)
    assert 1 <= last < cfg.fl_iteration_num
    assert accountant.epsilon_after(last) <= 1.5 < accountant.epsilon_after(last + 1)
    fields = metrics_fields(cfg, last)
    assert fields["dpBudgetExhausted"] == (f"DP budget exhausted: ε after iteration {last + 1} would be "
                                           f"{accountant.epsilon_after(last + 1):.4g} > budget 1.5")
    assert fields["dpEpsilonSpent"] == pytest.approx(accountant.epsilon_after(last), abs=1e-6)
    assert "dpBudgetExhausted" not in metrics_fields(cfg, last - 1)
    assert last_iteration(dp_config(dp_eps_budget=1000.0)) == 30  # a budget never reached: fl_iteration_num
    assert last_iteration(dp_config()) == 30
    assert metrics_fields(load(SEED_YAML), 3) == {}


def test_a_budget_below_one_iteration_and_a_small_population_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"dp_eps_budget is 0\.01 but one iteration already spends"):
        check_dp_budget(dp_config(dp_eps_budget=0.01))
    with pytest.raises(ConfigError, match="dp_population is 1, fewer than the 2 devices an iteration takes"):
        check_dp_budget(dp_config(dp_population=1))


@pytest.mark.parametrize(("setting", "message"), [
    ("encrypt.dp_encrypt.dp_population=-3", "encrypt.dp_encrypt.dp_population: -3 is out of range"),
    ("encrypt.dp_encrypt.dp_eps_budget=-1.0", "encrypt.dp_encrypt.dp_eps_budget: -1.0 is out of range"),
    ("encrypt.dp_encrypt.dp_population=2.5", "encrypt.dp_encrypt.dp_population"),
    ("encrypt.dp_encrypt.dp_eps_budget=0.001", "encrypt.dp_encrypt.dp_eps_budget is 0.001"),
])
def test_config_check_names_the_bad_key(setting: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(SEED_YAML), "--set", "encrypt.encrypt_train_type=DP_ENCRYPT", "--set", setting])
    assert code == CONFIG_ERROR
    assert message in capsys.readouterr().err


def test_config_check_accepts_good_dp_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SEED_YAML), "--set", "encrypt.encrypt_train_type=DP_ENCRYPT", "--set",
                 "encrypt.dp_encrypt.dp_population=100", "--set", "encrypt.dp_encrypt.dp_eps_budget=500"]) == OK
    assert "dp_eps_budget: 500.0" in capsys.readouterr().out
