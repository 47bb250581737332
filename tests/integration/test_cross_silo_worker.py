"""CrossSiloSync against a real server and Redis (spec §14 test_cross_silo.py): two workers train a real torch model;
after every window each worker holds exactly the model getModel serves; the FedProx term and the Scaffold
correction behave as their formulas; a worker restarted mid-run (new fl_id, iteration full) joins the next one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.integration.cluster import LENET_YAML, running_server, ut_config
from torch import nn

from mindfed.config import FLConfig, load
from mindfed.errors import ConfigError
from mindfed.model.weights import ModelWeights
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.responses import parse_response_get_model
from mindfed.worker.cross_silo import CrossSiloSync

pytestmark = pytest.mark.integration
STEPS = 5


def net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(4, 3)


def initial() -> ModelWeights:
    return ModelWeights({n: t.detach().numpy() for n, t in net(99).state_dict().items()})


def config(redis_address: str, fl_name: str, kind: str = "FedAvg", iterations: int = 3, **extra: object
           ) -> FLConfig:
    return ut_config(redis_address, fl_name, **{
        "server_mode": "CLOUD_TRAINING", "aggregation.aggregation_type": kind, "fl_iteration_num": iterations,
        "round.start_fl_job_threshold": 2, "aggregation.total_client_num": 2, **extra})


def train_windows(sync: CrossSiloSync, model: nn.Module, windows: int, seed: int, lr: float = 0.1
                  ) -> list[tuple[int, dict[str, np.ndarray]]]:
    """`windows` windows of STEPS SGD steps on random data; after each: (iteration, the model's weights)."""
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    held = []
    for _ in range(windows):
        sync.begin_window(model)
        for _ in range(STEPS):
            x, y = torch.randn(8, 4, generator=gen), torch.randint(0, 3, (8,), generator=gen)
            loss = nn.functional.cross_entropy(model(x), y) + sync.proximal_term(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            sync.after_step(model, lr)
        sync.end_window(model, STEPS, float(loss.detach()), 0.5)
        held.append((sync.iteration, {n: t.detach().numpy().copy() for n, t in model.state_dict().items()}))
    return held


@pytest.mark.parametrize("kind", ["FedAvg", "FedNova", "Scaffold", "FedProx"])
async def test_after_every_window_the_workers_hold_the_served_model(redis_address: str, fl_name: str,
                                                                    tmp_path: Path, kind: str) -> None:
    # Prepare
    cfg = config(redis_address, fl_name, kind, **{"aggregation.iid_rate": 0.5})
    async with running_server(cfg, initial(), tmp_path) as server:
        address = server.url.removeprefix("http://").rstrip("/")
        syncs = [CrossSiloSync(cfg, address, n, poll_interval_s=0.05, deadline_s=30) for n in (10, 30)]
        try:
            # Execute: two workers, each in its own thread with its own loop, as two processes would be
            held = await asyncio.gather(*(asyncio.to_thread(train_windows, s, net(i), 3, i)
                                          for i, s in enumerate(syncs)))
        finally:
            for s in syncs:
                await asyncio.to_thread(s.close)  # on the thread of no running loop, as the workers ran
        served = {}
        for iteration in (1, 2, 3):
            view = parse_response_get_model(await server.get_model(iteration))
            assert view.retcode == ResponseCode.SUCCEED
            served[iteration] = {t.name: np.array(t.data) for t in view.feature_map}

    # Assert
    for worker in held:
        assert [it for it, _ in worker] == [1, 2, 3]
        for iteration, weights in worker:
            assert set(served[iteration]) == {"bias", "weight"}
            for name, value in served[iteration].items():
                np.testing.assert_array_equal(weights[name].reshape(-1), value)
    assert not np.array_equal(served[3]["weight"], initial().flat("weight"))


async def test_a_worker_restarted_with_a_new_id_rejoins_at_the_next_iteration(redis_address: str, fl_name: str,
                                                                              tmp_path: Path) -> None:
    # Prepare: iteration 1 admits w1 and a worker that dies right after startFLJob; updateModel times out
    cfg = config(redis_address, fl_name, iterations=2, **{"round.update_model_time_window": 1000,
                                                        "round.start_fl_job_time_window": 3000})
    async with running_server(cfg, initial(), tmp_path) as server:
        await server.start_fl_job("dead-worker", 5)
        address = server.url.removeprefix("http://").rstrip("/")
        syncs = [CrossSiloSync(cfg, address, 5, poll_interval_s=0.05, deadline_s=30) for _ in range(2)]
        try:
            # Execute: w1 finds iteration 1 with one seat left, its restarted peer finds it full
            first = await asyncio.to_thread(train_windows, syncs[0], net(0), 1, 0)
            held = await asyncio.gather(*(asyncio.to_thread(train_windows, s, net(i), 1, i)
                                          for i, s in enumerate(syncs)))
        finally:
            for s in syncs:
                await asyncio.to_thread(s.close)  # on the thread of no running loop, as the workers ran
        state = server.node.state
        assert state is not None
        status = await state.store.read_status(state.instance)

    # Assert: iteration 1 failed (the dead worker never uploaded) without wedging w1, iteration 2 had both
    assert [it for it, _ in first] == [1]
    assert [[it for it, _ in worker] for worker in held] == [[2], [2]]
    assert status is not None
    assert status.iteration == 3
    np.testing.assert_array_equal(held[0][0][1]["weight"], held[1][0][1]["weight"])


def test_worker_refuses_what_it_cannot_honour(redis_address: str, fl_name: str) -> None:
    with pytest.raises(ConfigError, match="data_size: 0 must be an int in"):
        CrossSiloSync(config(redis_address, fl_name), "127.0.0.1:1", 0)
    with pytest.raises(ConfigError, match="a cross-silo worker needs CLOUD_TRAINING"):
        CrossSiloSync(ut_config(redis_address, fl_name), "127.0.0.1:1", 1)
    with pytest.raises(ConfigError, match="FedCM"):
        CrossSiloSync(config(redis_address, fl_name, "FedCM"), "127.0.0.1:1", 1)


def test_fedprox_term_is_mu_half_the_mean_squared_distance() -> None:
    # Prepare: a worker whose last global model is known (set as begin_window would)
    cfg = config("127.0.0.1:1", "t-prox", "FedProx", **{"aggregation.iid_rate": 0.4})
    sync = CrossSiloSync(cfg, "127.0.0.1:1", 1)
    model = net(0)
    anchor = {n: np.zeros(t.numel(), np.float32) for n, t in model.state_dict().items()}
    sync._global = anchor  # noqa: SLF001 - the anchor begin_window sets from getModel
    try:
        # Execute
        term = float(sync.proximal_term(model).detach())
    finally:
        sync.close()
    # Assert
    expected = sum(0.4 / 2 * float(np.mean(t.detach().numpy() ** 2)) for t in model.parameters())
    assert term == pytest.approx(expected, rel=1e-6)


def manager_windows(overrides: dict[str, object], address: str, model: nn.Module, seed: int, data_size: int,
                    lr: float = 0.1) -> list[dict[str, np.ndarray]]:
    """FederatedLearningManager in a plain torch loop (train_step with lr and the step's loss), 2 windows; the
    model's weights after each window."""
    from mindfed import FederatedLearningManager  # noqa: PLC0415 - the public import path, loaded lazily

    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    held = []
    with FederatedLearningManager(str(LENET_YAML), model, sync_frequency=STEPS, http_server_address=address,
                                  data_size=data_size, config_overrides=overrides) as fl:
        for _ in range(2 * STEPS):
            with fl.train_step(lr=lr) as step:
                x, y = torch.randn(8, 4, generator=gen), torch.randint(0, 3, (8,), generator=gen)
                loss = nn.functional.cross_entropy(model(x), y) + fl.proximal_term()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step.loss = float(loss.detach())
            if fl.window_done:
                held.append({n: t.detach().numpy().copy() for n, t in model.state_dict().items()})
    return held


async def test_the_manager_drives_a_scaffold_worker_to_the_served_model(redis_address: str, fl_name: str,
                                                                        tmp_path: Path) -> None:
    # Prepare: the same job as `config`, handed to the manager as YAML overrides (it loads the file itself)
    overrides: dict[str, object] = {
        "fl_name": fl_name, "distributed_cache.address": redis_address, "fl_iteration_num": 3,
        "unsupervised.eval_type": "NOT_EVAL", "client.poll_hold_ms": 0, "server_mode": "CLOUD_TRAINING",
        "aggregation.aggregation_type": "Scaffold", "round.start_fl_job_threshold": 2,
        "aggregation.total_client_num": 2, "round.start_fl_job_time_window": 10000,
        "round.update_model_time_window": 10000, "round.global_iteration_time_window": 30000}
    cfg = load(LENET_YAML, overrides)
    async with running_server(cfg, initial(), tmp_path) as server:
        address = server.url.removeprefix("http://").rstrip("/")
        # Execute: two workers, each in its own thread, as two processes would be
        held = await asyncio.gather(*(asyncio.to_thread(manager_windows, overrides, address, net(i), i, n)
                                      for i, n in enumerate((10, 30))))
        served = {}
        for iteration in (1, 2):
            view = parse_response_get_model(await server.get_model(iteration))
            assert view.retcode == ResponseCode.SUCCEED
            served[iteration] = {t.name: np.array(t.data) for t in view.feature_map}
    # Assert: after each window both workers hold what getModel serves for that iteration
    for worker in held:
        assert len(worker) == 2
        for iteration, weights in zip((1, 2), worker, strict=True):
            for name, value in served[iteration].items():
                np.testing.assert_array_equal(weights[name].reshape(-1), value)
    first = json.loads((tmp_path / "metrics.json").read_text().splitlines()[0])
    assert first["metricsLoss"] > 0  # the windows' mean loss reached the server
