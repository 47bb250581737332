"""CLOUD_TRAINING on a real server over real Redis (spec §11.2, §4.4): startFLJob without weights, the aggregate of
each aggregation type against its formula on hand-made uploads, and STABLE_PW_ENCRYPT's key exchange, masks that
cancel when every worker uploads, and an iteration that fails naming the worker that did not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import Server, running_server, ut_config

from mindfed.client.device import DeviceClient
from mindfed.config import FLConfig
from mindfed.model.weights import ModelWeights
from mindfed.protocol import responses as rs
from mindfed.protocol.codes import ResponseCode
from mindfed.worker.cross_silo_client import CrossSiloRounds

pytestmark = pytest.mark.integration


def model() -> ModelWeights:
    rng = np.random.default_rng(11)
    return ModelWeights({"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5),
                         "frozen": rng.standard_normal(2)}, require_aggr={"frozen": False})


def cloud_config(redis_address: str, fl_name: str, kind: str = "FedAvg", workers: int = 2, **extra: object
                 ) -> FLConfig:
    return ut_config(redis_address, fl_name, **{
        "server_mode": "CLOUD_TRAINING", "aggregation.aggregation_type": kind, "aggregation.total_client_num": 4,
        "round.start_fl_job_threshold": workers, **extra})


def uploads(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a": rng.standard_normal(12).astype(np.float32), "b": rng.standard_normal(5).astype(np.float32)}


async def join(server: Server, fl_id: str, data_size: int) -> rs.ResponseFLJobView:
    job = rs.parse_response_fl_job(await server.start_fl_job(fl_id, data_size))
    assert job.retcode == ResponseCode.SUCCEED, job.reason
    return job


async def test_start_fl_job_hands_workers_no_weights_and_get_model_the_model(redis_address: str, fl_name: str,
                                                                               tmp_path: Path) -> None:
    # Prepare
    async with running_server(cloud_config(redis_address, fl_name, workers=2), model(), tmp_path) as server:
        # Execute
        too_small = rs.parse_response_fl_job(await server.start_fl_job("w2", 0))
        too_large = rs.parse_response_fl_job(await server.start_fl_job("w3", 65536))
        job = await join(server, "w1", 65535)
        first = await server.wait_model(0)

    # Assert
    assert [t.name for t in job.feature_map] == []
    assert {t.name: np.array(t.data).tolist() for t in first.feature_map} == {
        n: model().flat(n).tolist() for n in ("a", "b")}  # require_aggr=False stays on the server
    assert (too_small.reason, too_large.reason) == ("FL job data size is not enough.",
                                                    "FL job data size is too large.")


@pytest.mark.parametrize("kind", ["FedAvg", "FedProx"])
async def test_fedavg_and_fedprox_aggregate_the_weighted_mean(redis_address: str, fl_name: str, tmp_path: Path,
                                                              kind: str) -> None:
    # Prepare: workers upload w·n (spec §4.4); FedProx differs only in the workers' loss
    w1, w2 = uploads(1), uploads(2)
    async with running_server(cloud_config(redis_address, fl_name, kind), model(), tmp_path) as server:
        for fl_id, n in (("w1", 10), ("w2", 40)):
            await join(server, fl_id, n)
        # Execute
        for fl_id, n, w in (("w1", 10, w1), ("w2", 40, w2)):
            await server.update_model(fl_id, 1, {k: v * n for k, v in w.items()})
        got = {t.name: np.array(t.data) for t in (await server.wait_model(1)).feature_map}

    # Assert
    for name in ("a", "b"):
        np.testing.assert_allclose(got[name], (10 * w1[name] + 40 * w2[name]) / 50, rtol=1e-5, atol=1e-6)


async def test_fednova_adds_the_normalised_steps_to_the_previous_model(redis_address: str, fl_name: str,
                                                                       tmp_path: Path) -> None:
    # Prepare: uploads are Δ_i/τ_i with data_size τ_i; w = w_prev + Στ·Σ(Δ_i/τ_i)/K², K = 2 updates
    d1, d2 = uploads(3), uploads(4)
    async with running_server(cloud_config(redis_address, fl_name, "FedNova"), model(), tmp_path) as server:
        for fl_id, tau in (("w1", 2), ("w2", 6)):
            await join(server, fl_id, tau)
        # Execute
        for fl_id, tau, d in (("w1", 2, d1), ("w2", 6, d2)):
            await server.update_model(fl_id, 1, {k: v / tau for k, v in d.items()})
        got = {t.name: np.array(t.data) for t in (await server.wait_model(1)).feature_map}

    # Assert
    for name in ("a", "b"):
        expected = model().flat(name) + (2 + 6) * (d1[name] / 2 + d2[name] / 6) / 2**2
        np.testing.assert_allclose(got[name], expected, rtol=1e-5, atol=1e-6)


async def test_scaffold_averages_weights_and_moves_the_control_variates(redis_address: str, fl_name: str,
                                                                        tmp_path: Path) -> None:
    # Prepare: weights as FedAvg; control.<name> uploads are unweighted Δc, c = c_prev + ΣΔc / total_client_num (4)
    w1, w2, dc1, dc2 = uploads(5), uploads(6), uploads(7), uploads(8)
    cfg = cloud_config(redis_address, fl_name, "Scaffold")
    async with running_server(cfg, model(), tmp_path) as server:
        first = [await join(server, fl_id, n) for fl_id, n in (("w1", 3), ("w2", 1))]
        # Execute
        for fl_id, n, w, dc in (("w1", 3, w1, dc1), ("w2", 1, w2, dc2)):
            await server.update_model(fl_id, 1, {**{k: v * n for k, v in w.items()},
                                                 **{f"control.{k}": v for k, v in dc.items()}})
        got = {t.name: np.array(t.data) for t in (await server.wait_model(1)).feature_map}
        second = await join(server, "w1", 3)

    # Assert
    assert {t.name for t in first[0].feature_map} == {"control.a", "control.b"}
    assert all(not np.array(t.data).any() for t in first[0].feature_map)  # zero-initialised twins
    assert set(got) == {"a", "b"}  # control variates are not the model
    for name in ("a", "b"):
        np.testing.assert_allclose(got[name], (3 * w1[name] + w2[name]) / 4, rtol=1e-5, atol=1e-6)
    controls = {t.name: np.array(t.data) for t in second.feature_map}
    for name in ("a", "b"):
        np.testing.assert_allclose(controls[f"control.{name}"], (dc1[name] + dc2[name]) / 4, rtol=1e-5, atol=1e-6)


def stable_config(redis_address: str, fl_name: str, workers: int, update_window_ms: int = 10000) -> FLConfig:
    return cloud_config(redis_address, fl_name, workers=workers, **{
        "encrypt.encrypt_train_type": "STABLE_PW_ENCRYPT", "encrypt.pw_encrypt.share_secrets_ratio": 1.0,
        "encrypt.pw_encrypt.cipher_time_window": 10000, "round.update_model_time_window": update_window_ms})


async def masked_round(server: Server, fl_ids: list[str], upload: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Every worker joins and exchanges keys; those in `upload` send their masked w·n. Returns what each sent."""
    sent: dict[str, dict[str, np.ndarray]] = {}

    async def worker(index: int, fl_id: str) -> None:
        async with DeviceClient(server.url.rstrip("/"), server.fl_name, fl_id, poll_interval_s=0.05) as client:
            rounds = CrossSiloRounds(client, deadline_s=20)
            job = await rounds.join(index + 1)
            keys, peers = await rounds.exchange_keys(job.iteration)
            assert set(peers) == set(fl_ids)
            if fl_id in upload:
                plain = {k: v * (index + 1) for k, v in uploads(20 + index).items()}
                sent[fl_id] = keys.mask(plain, peers)
                await rounds.upload(job.iteration, sent[fl_id], 0.0, 0.0)

    async with asyncio.TaskGroup() as group:
        for i, fl_id in enumerate(fl_ids):
            group.create_task(worker(i, fl_id))
    return sent


async def test_stable_pw_masks_cancel_when_every_worker_uploads(redis_address: str, fl_name: str,
                                                                tmp_path: Path) -> None:
    # Prepare
    ids = ["worker_a", "worker_b", "worker_c"]
    async with running_server(stable_config(redis_address, fl_name, 3), model(), tmp_path) as server:
        # Execute
        sent = await masked_round(server, ids, ids)
        got = {t.name: np.array(t.data) for t in (await server.wait_model(1, timeout_s=20)).feature_map}

    # Assert: each upload is masked (far from its w·n), the sum is the plain weighted mean
    plain = {i: {k: v * (i + 1) for k, v in uploads(20 + i).items()} for i in range(3)}
    for i, fl_id in enumerate(ids):
        assert np.abs(sent[fl_id]["a"] - plain[i]["a"]).max() > 0.05
    for name in ("a", "b"):
        expected = sum(plain[i][name] for i in range(3)) / (1 + 2 + 3)
        np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-6)


async def test_stable_pw_fails_the_iteration_naming_the_worker_that_did_not_upload(
        redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # Prepare
    ids = ["worker_a", "worker_b", "worker_c"]
    async with running_server(stable_config(redis_address, fl_name, 3, update_window_ms=1500), model(),
                              tmp_path) as server:
        # Execute: worker_c exchanged keys and never uploads
        await masked_round(server, ids, ids[:2])
        await server.wait_iteration(2, timeout_s=20)
        state = server.node.state
        assert state is not None
        status = await state.store.read_status(state.instance)
        served = {t.name: np.array(t.data) for t in (await server.wait_model(1)).feature_map}

    # Assert: the failure says who is missing and why; the model is carried forward, not a masked sum
    assert status is not None
    assert not status.last_success
    assert status.last_result.startswith("Round updateModel timeout!")
    assert "1 worker(s) that exchanged keys did not upload (worker_c)" in status.last_result
    assert "their pairwise masks cannot cancel" in status.last_result
    for name in ("a", "b"):
        np.testing.assert_array_equal(served[name], model().flat(name))
