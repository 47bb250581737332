"""DP_ENCRYPT end to end: the simulator's devices against a real server over a real Redis. The uploads are noised (the
aggregate differs from a plain run that trains exactly the same), ε reaches metrics.json, and the DP budget finishes
the job early with its reason on the last line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config

from mindfed.client.simulator import Simulator
from mindfed.data.device_data import DeviceData
from mindfed.model.lenet import init_lenet5
from mindfed.model.weights import ModelWeights
from mindfed.protocol.plan import CipherParams
from mindfed.server.rounds import start_fl_job
from mindfed.summary.metrics_file import read_all

pytestmark = pytest.mark.integration


def devices(count: int = 2, samples: int = 12) -> list[DeviceData]:
    rng = np.random.default_rng(0)
    return [DeviceData(rng.random((samples, 1, 32, 32), dtype=np.float32),
                       rng.integers(0, 10, samples).astype(np.int64)) for _ in range(count)]


async def run_job(redis_address: str, fl_name: str, tmp_path: Path, **overrides: object
                  ) -> tuple[list[dict[str, object]], ModelWeights | None]:
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2, "client.client_epoch_num": 1,
                                               "client.client_batch_size": 4, **overrides})
    async with running_server(cfg, init_lenet5(10, 1, seed=0), tmp_path) as server:
        report = await Simulator([server.url.rstrip("/")], fl_name, devices(), 10, train_workers=1,
                                 poll_interval_s=0.05, deadline_s=60).run()
        assert report.errors == []
        assert report.finished_devices == 2
        state = server.node.state
        assert state is not None
        first = state.models.get(1)
    return read_all(tmp_path / "metrics.json"), first


async def test_dp_uploads_are_noised_and_the_budget_finishes_the_job(redis_address: str, fl_name: str,
                                                                     tmp_path: Path) -> None:
    plain_lines, plain_model = await run_job(redis_address, fl_name + "p", tmp_path / "plain", fl_iteration_num=1)
    assert plain_model is not None
    assert "dpEpsilonSpent" not in plain_lines[-1]

    # dp_eps 1: σ/C ≈ 3.74, q = 1; the budget admits two iterations of the five configured
    lines, dp_model = await run_job(redis_address, fl_name + "d", tmp_path / "dp", fl_iteration_num=5, **{
        "encrypt.encrypt_train_type": "DP_ENCRYPT", "encrypt.dp_encrypt.dp_eps": 1.0,
        "encrypt.dp_encrypt.dp_delta": 1e-5, "encrypt.dp_encrypt.dp_eps_budget": 1.8})
    assert dp_model is not None

    # the same training (same seeds), but clipped to C = 0.05 and noised: the aggregate moved elsewhere
    initial = init_lenet5(10, 1, seed=0)
    moved_plain = np.sqrt(sum(float(np.sum((plain_model[n] - initial[n]) ** 2)) for n in dp_model.names))
    gap = np.sqrt(sum(float(np.sum((dp_model[n] - plain_model[n]) ** 2)) for n in dp_model.names))
    assert moved_plain > 0
    # σ = 3.74 x 0.05 per element on ~62k weights, averaged over two devices: the noise dwarfs the update
    assert gap > 10 * moved_plain

    assert [line["currentIteration"] for line in lines] == [1, 2]
    spent = [float(line["dpEpsilonSpent"]) for line in lines]  # type: ignore[arg-type]
    assert 0 < spent[0] < spent[1] <= 1.8  # 1.09, 1.59; a third would reach 1.99
    assert lines[-1]["instanceStatus"] == "finish"
    assert str(lines[-1]["dpBudgetExhausted"]).startswith("DP budget exhausted: ε after iteration 3 would be ")
    assert "dpBudgetExhausted" not in lines[0]


async def test_a_mode_the_sdk_cannot_apply_stops_the_device(redis_address: str, fl_name: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # This build's server refuses STABLE_PW_ENCRYPT at start-up (check_supported), so make it announce it anyway: the
    # device must refuse rather than upload its plain weights.
    monkeypatch.setattr(start_fl_job, "cipher_params",
                        lambda *_args: CipherParams(encrypt_type="STABLE_PW_ENCRYPT"))
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 1})
    async with running_server(cfg, init_lenet5(10, 1, seed=0), tmp_path) as server:
        simulator = Simulator([server.url.rstrip("/")], fl_name, devices(1), 10, train_workers=1,
                              poll_interval_s=0.05, deadline_s=30)
        with pytest.raises(ExceptionGroup) as raised:
            await simulator.run()
        assert simulator.report.uploads == 0
    assert "encrypt_type STABLE_PW_ENCRYPT, which this device SDK cannot apply" in str(raised.value.exceptions[0])
