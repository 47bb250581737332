"""HYBRID_TRAINING on a real server over a real Redis (spec §11.1, MindSpore's test_hybrid_train.py): the devices'
aggregate does not end the iteration; a worker pulls it over the node transport, pushes its weights, and pushMetrics
ends the iteration with them; /state lists the worker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import Server, running_scheduler, running_server, ut_config, ut_model

from mindfed.net.endpoint import TcpEndpoint
from mindfed.protocol import hybrid as H
from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs
from mindfed.protocol.codes import ResponseCode
from mindfed.worker.hybrid_session import HybridSession, WorkerOptions

pytestmark = pytest.mark.timeout(60)
NOT_READY = "The model is not ready yet for iteration"


def random_like(model: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(v.shape).astype(np.float32) for n, v in model.items()}


async def device_round(server: Server, fl_id: str, update: dict[str, np.ndarray], data_size: int,
                       loss: float = 0.0) -> None:
    job = rs.parse_response_fl_job(await server.start_fl_job(fl_id, data_size))
    assert job.retcode == ResponseCode.SUCCEED, job.reason
    body = await server.update_model(fl_id, job.iteration, update, upload_loss=loss)
    assert rs.parse_response_update_model(body).retcode == ResponseCode.SUCCEED


async def ask(endpoint: TcpEndpoint, server: Server, frame_type: int, payload: bytes) -> bytes:
    assert server.node.state is not None
    frame = await endpoint.request(server.node.state.tcp_address, frame_type, payload, 10.0)
    return frame.payload.tobytes()


async def wait_aggregated(endpoint: TcpEndpoint, server: Server, iteration: int) -> H.WeightsResponse:
    for _ in range(200):
        rsp = H.parse_response_pull_weight(await ask(endpoint, server, H.PULL_WEIGHT,
                                                     H.build_request_pull_weight(iteration, [])))
        if rsp.retcode == ResponseCode.SUCCEED:
            return rsp
        await asyncio.sleep(0.05)
    raise AssertionError("the aggregate was never served")


async def test_the_worker_pushed_weights_become_the_model_and_its_metrics_end_the_iteration(
        redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # Prepare: a HYBRID server; one device uploads (data size 32) as in MindSpore's test
    config = ut_config(redis_address, fl_name, server_mode="HYBRID_TRAINING")
    initial = ut_model()
    update = random_like(dict(initial), 1)
    async with running_server(config, initial, tmp_path) as server, running_scheduler(config) as sched:
        await device_round(server, "1xxx", update, 32)
        for _ in range(6):  # Assert: no model for the devices while no worker came
            body = await server.get_model(1)
            assert NOT_READY in rs.parse_response_get_model(body).reason
            await asyncio.sleep(0.1)

        # Execute: the worker pulls, pushes, reports
        session = await HybridSession.open(config, dict(initial), WorkerOptions(heartbeat_ttl_s=3))
        try:
            pulled = await session.worker.pull(initial.names)
            nodes = (await sched.ok("/state"))["nodes"]
            pushed = random_like(dict(initial), 2)
            result = await session.worker.push(pushed)
            between = rs.parse_response_get_model(await server.get_model(1))  # pushed, no metrics yet
            assert await session.worker.push_metrics(6.9, 10.1)
            served = await server.wait_model(1)
        finally:
            await session.close()
        after = (await sched.ok("/state"))["nodes"]

    # Assert: pulled == the device's aggregate; getModel == the pushed weights; metrics == the pushed values
    for name in initial.aggregated_names:
        np.testing.assert_allclose(pulled[name], update[name].reshape(-1) / 32, rtol=1e-6)
    assert (result.accepted, result.reason) == (True, "PushWeight succeed.")
    assert NOT_READY in between.reason
    got = {t.name: np.asarray(t.data) for t in served.feature_map}
    assert sorted(got) == initial.names  # HYBRID serves every weight
    for name, value in pushed.items():
        np.testing.assert_array_equal(got[name], value.reshape(-1))
    line = [json.loads(x) for x in (tmp_path / "metrics.json").read_text().splitlines()][-1]
    assert (line["metricsLoss"], line["metricsAuc"], line["iterationResult"]) == (6.9, 10.1, "success")
    assert [n["role"] for n in nodes] == ["SERVER", "WORKER"]
    assert nodes[1] == {"node_id": session.membership.worker_id, "role": "WORKER", "tcp_address": ""}
    assert nodes[1]["node_id"].startswith("worker_fl_")
    assert [n["role"] for n in after] == ["SERVER"]


async def test_worker_rounds_answer_mindspore_texts(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    config = ut_config(redis_address, fl_name, server_mode="HYBRID_TRAINING")
    initial = ut_model()
    async with running_server(config, initial, tmp_path) as server, TcpEndpoint.open() as worker:
        # Execute / Assert: before the devices' aggregate
        before = H.parse_response_pull_weight(await ask(worker, server, H.PULL_WEIGHT,
                                                        H.build_request_pull_weight(1, initial.names)))
        early_metrics = rs.parse_response_push_metrics(await ask(worker, server, H.PUSH_METRICS,
                                                                 rq.build_request_push_metrics(1.0, 0.5)))
        await device_round(server, "d1", random_like(dict(initial), 3), 4)
        await wait_aggregated(worker, server, 1)
        wrong_iteration = H.parse_response_pull_weight(await ask(worker, server, H.PULL_WEIGHT,
                                                                 H.build_request_pull_weight(7, initial.names)))
        unknown = H.parse_response_pull_weight(await ask(worker, server, H.PULL_WEIGHT,
                                                         H.build_request_pull_weight(1, ["nope"])))
        bad_size = H.parse_response_push_weight(await ask(worker, server, H.PUSH_WEIGHT, H.build_request_push_weight(
            1, [("feature_bn", np.zeros(5, np.float32))])))
        not_finite = H.parse_response_push_weight(await ask(worker, server, H.PUSH_WEIGHT, H.build_request_push_weight(
            1, [("feature_bn", np.array([np.nan], np.float32))])))
        garbage = await ask(worker, server, H.PUSH_WEIGHT, b"\x00" * 7)
        http_metrics = rs.parse_response_push_metrics(await server.post("pushMetrics",
                                                                        rq.build_request_push_metrics(1.0, 0.5)))
        first = H.parse_response_push_weight(await ask(worker, server, H.PUSH_WEIGHT, H.build_request_push_weight(
            1, [("feature_bn", np.ones(1, np.float32))])))
        second = H.parse_response_push_weight(await ask(worker, server, H.PUSH_WEIGHT, H.build_request_push_weight(
            1, [("feature_bn", np.full(1, 2.0, np.float32))])))
        assert rs.parse_response_push_metrics(await ask(worker, server, H.PUSH_METRICS,
                                                        rq.build_request_push_metrics(1.0, 0.5))) == 200
        await server.wait_iteration(2)
        stale = H.parse_response_push_weight(await ask(worker, server, H.PUSH_WEIGHT, H.build_request_push_weight(
            1, [("feature_bn", np.ones(1, np.float32))])))
        served = await server.wait_model(1)

    assert (before.retcode, before.reason) == (201, "The aggregation for the weights is not done yet.")
    assert early_metrics == ResponseCode.OutOfTime
    assert (wrong_iteration.retcode, wrong_iteration.reason, wrong_iteration.iteration) == (
        201, "PullWeight iteration 7 is invalid. Server current iteration: 1", 1)
    assert (unknown.retcode, unknown.reason) == (400, "Parameter nope is not registered in server.")
    assert (bad_size.retcode, bad_size.reason) == (400, "Weight feature_bn has 5 elements, the model's has 1.")
    assert (not_finite.retcode, not_finite.reason) == (400, "Weight feature_bn is not finite.")
    assert H.parse_response_push_weight(garbage).reason == "The schema of RequestPushWeight is invalid."
    assert http_metrics == ResponseCode.RequestError  # devices cannot end a hybrid iteration
    assert (first.retcode, first.reason) == (200, "PushWeight succeed.")
    assert (second.retcode, second.reason) == (200, "Model of iteration of 1 has finished")
    assert (stale.retcode, stale.reason) == (300, "PushWeight iteration number is invalid:1, current iteration:2")
    assert {t.name: float(t.data[0]) for t in served.feature_map}["feature_bn"] == 1.0  # the first push won


async def test_an_iteration_whose_worker_never_comes_fails_at_its_global_timer(
        redis_address: str, fl_name: str, tmp_path: Path) -> None:
    config = ut_config(redis_address, fl_name, server_mode="HYBRID_TRAINING",
                       **{"round.global_iteration_time_window": 2500})
    initial = ut_model()
    async with running_server(config, initial, tmp_path) as server:
        await device_round(server, "d1", random_like(dict(initial), 4), 2)
        await server.wait_iteration(2, timeout_s=15)
        served = await server.wait_model(1)
    line = [json.loads(x) for x in (tmp_path / "metrics.json").read_text().splitlines()][-1]
    assert (line["currentIteration"], line["iterationResult"]) == (1, "fail")
    assert line["iterationReason"] == "Global timer timeout! This iteration is invalid. Proceed to next iteration."
    got = {t.name: np.asarray(t.data) for t in served.feature_map}
    for name in initial.names:  # the failed iteration carries the model forward
        np.testing.assert_array_equal(got[name], initial.flat(name))

