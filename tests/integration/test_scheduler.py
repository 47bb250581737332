"""The scheduler's management API (spec §6.1) over a real Redis and real servers: MindSpore's `test_fl_scheduler.py`
bullets (spec §14) that the scheduler alone can satisfy, plus statelessness and the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from tests.integration.cluster import Scheduler, running_scheduler, running_server, ut_config, ut_model

from mindfed.cache.embedded import free_port
from mindfed.cache.keys import JobKeys
from mindfed.errors import ConfigError
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.scheduler import SchedulerApp

pytestmark = pytest.mark.integration

DISABLED_TEXT = b"The server's training job is disabled or finished."


async def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("address", ["127.0.0.1:4000x", "127.0.0.1:", "127.0.0.1", "256.0.0.1:5000"])
def test_invalid_manage_address_is_refused(redis_address: str, fl_name: str, address: str) -> None:
    with pytest.raises(ConfigError, match="^Failed to start scheduler http server, invalid server address: "):
        SchedulerApp(ut_config(redis_address, fl_name), address)


def test_manage_address_must_be_a_str(redis_address: str, fl_name: str) -> None:
    with pytest.raises(TypeError, match="^Parameter 'manage_address' should be str$"):
        SchedulerApp(ut_config(redis_address, fl_name), 4000)


def test_embedded_cache_address_is_refused(fl_name: str) -> None:
    with pytest.raises(ConfigError, match="--cache_address"):
        SchedulerApp(ut_config("", fl_name), "127.0.0.1:0")


async def test_routes_before_any_server_cannot_find_the_cluster(redis_address: str, fl_name: str) -> None:
    # Prepare
    async with running_scheduler(ut_config(redis_address, fl_name)) as sched:
        # Execute / Assert
        missing = f"Cannot find cluster info for {fl_name}"
        assert await sched.error("/state") == missing
        assert await sched.error("/queryInstance") == missing
        assert await sched.error("/enableFLS") == missing
        assert await sched.error("/disableFLS") == missing
        assert await sched.error("/newInstance", "{}") == f"New instance failed: {missing}"


async def test_state_lists_live_servers_then_none(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_scheduler(cfg) as sched:
        async with running_server(cfg, ut_model(), tmp_path / "s1") as s1:
            one = await sched.ok("/state")
            async with running_server(cfg, ut_model(), tmp_path / "s2") as s2:
                two = await sched.ok("/state")
        after = await sched.ok("/state")
    assert (one["cluster_state"], one["message"]) == ("CLUSTER_READY", "Get cluster state successful.")
    assert [n["node_id"] for n in one["nodes"]] == [s1.node.state.node_id]  # type: ignore[union-attr]
    assert two["cluster_state"] == "CLUSTER_READY"
    assert sorted(n["node_id"] for n in two["nodes"]) == sorted(
        [s1.node.state.node_id, s2.node.state.node_id])  # type: ignore[union-attr]
    assert [n["node_id"] for n in two["nodes"]] == sorted(n["node_id"] for n in two["nodes"])
    for node in two["nodes"]:
        assert node["role"] == "SERVER"
        assert node["tcp_address"] in node["node_id"]
        assert list(node) == ["node_id", "role", "tcp_address"]
    assert after["code"] == "0"
    assert "nodes" not in after
    assert after["cluster_state"] == "CLUSTER_READY"


async def test_state_drops_a_server_whose_heartbeat_expired(redis_address: str, fl_name: str) -> None:
    # Prepare: a registration whose heartbeat key is gone, as left by a kill -9
    cfg = ut_config(redis_address, fl_name)
    job = JobKeys(fl_name)
    client = aioredis.Redis.from_url(f"redis://{redis_address}", decode_responses=True)
    try:
        await client.set(job.instance_name, "i_x")
        await client.hset(job.instance("i_x").servers, "127.0.0.1:1::t::1", "127.0.0.1:1")
        async with running_scheduler(cfg) as sched:
            # Execute
            reply = await sched.ok("/state")
        # Assert
        assert "nodes" not in reply
        assert await client.hgetall(job.instance("i_x").servers) == {}
    finally:
        await client.aclose()


async def test_any_http_method_and_sorted_compact_json(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path):
        for method in ("GET", "POST", "PUT", "DELETE"):
            status, reply = await sched.call("/state", method=method)
            assert status == 200
            assert reply["code"] == "0"
        async with sched.session.get(sched.app.url + "/state") as resp:
            raw = await resp.text()
            assert resp.content_type == "application/json"
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))


async def test_disable_refuses_device_rounds_until_enabled(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path) as server:
        assert await sched.error("/enableFLS") == "The instance has already been enabled."
        # Execute
        disabled = await sched.ok("/disableFLS")
        # Assert
        assert disabled["message"] == "start disabling FL-Server successful."
        assert await sched.error("/disableFLS") == "The instance has already been disabled."
        assert (await sched.ok("/state"))["cluster_state"] == "CLUSTER_DISABLE"

        async def refused() -> bool:
            return await server.start_fl_job("1001") == DISABLED_TEXT

        await wait_for(refused)  # servers read runningState on their next tick
        assert await server.get_model(1) == DISABLED_TEXT
        assert await server.get_result(1) == DISABLED_TEXT
        assert await server.update_model("1001", 1, {"feature_bn": [1.0]}) == DISABLED_TEXT

        enabled = await sched.ok("/enableFLS")
        assert enabled["message"] == "start enabling FL-Server successful."
        assert (await sched.ok("/state"))["cluster_state"] == "CLUSTER_READY"

        async def serving() -> bool:
            body = await server.start_fl_job("1001")
            return not body.startswith(b"The ") and parse_response_fl_job(body).retcode == 200

        await wait_for(serving)


async def test_finished_instance_cannot_be_enabled_or_disabled(redis_address: str, fl_name: str,
                                                               tmp_path: Path) -> None:
    # Prepare: a one-iteration job, run to its end
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, fl_iteration_num=1)
    async with running_scheduler(cfg) as sched, running_server(cfg, model, tmp_path) as server:
        assert parse_response_fl_job(await server.start_fl_job("1001")).retcode == 200
        upload = {n: model[n] for n in model.aggregated_names}
        assert parse_response_update_model(await server.update_model("1001", 1, upload)).retcode == 200
        await server.wait_iteration(2)
        # Execute / Assert
        assert (await sched.ok("/state"))["cluster_state"] == "CLUSTER_FINISH"
        assert await sched.error("/enableFLS") == "The instance is completed and cannot be enabled."
        assert await sched.error("/disableFLS") == "The instance is completed and cannot be disabled."
        # a new instance is allowed after the finish (UT test_fl_scheduler_post_new_instance_success)
        assert (await sched.ok("/newInstance", "{}"))["message"] == "Start new instance successful."


@pytest.mark.parametrize(("body", "message"), [
    ("not json", "Illegal JSON format:"),
    ("", "The post message size is invalid."),
    ("[1, 2]", "New instance failed: Expect hyper param config to be json object"),
    ('"text"', "New instance failed: Expect hyper param config to be json object"),
    ('{"start_fl_job_threshold": -1}',
     "New instance failed: Field start_fl_job_threshold in hyper param config should be unsigned integer number"),
    ('{"start_fl_job_threshold": 2.5}',
     "New instance failed: Field start_fl_job_threshold in hyper param config should be unsigned integer number"),
    ('{"fl_iteration_num": "5"}',
     "New instance failed: Field fl_iteration_num in hyper param config should be unsigned integer number"),
    ('{"global_iteration_time_window": true}',
     "New instance failed: Field global_iteration_time_window in hyper param config should be unsigned integer "
     "number"),
    ('{"client_learning_rate": "0.1"}',
     "New instance failed: Field client_learning_rate in hyper param config should be float or integer number"),
    ('{"client_learning_rate": 0}',
     "New instance failed: Field client_learning_rate in hyper param config should be larger than 0"),
    ('{"update_model_ratio": -0.5}',
     "New instance failed: Field update_model_ratio in hyper param config should be larger than 0"),
    ('{"update_model_ratio": 1.5}',
     "New instance failed: Field update_model_ratio in hyper param config should be in range of (0,1.0]"),
])
async def test_new_instance_validation(redis_address: str, fl_name: str, tmp_path: Path, body: str,
                                       message: str) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path):
        before = await sched.ok("/queryInstance")
        error = await sched.error("/newInstance", body)
        after = await sched.ok("/queryInstance")
    assert error.startswith(message) if message.endswith(":") else error == message
    assert after["result"] == before["result"]  # nothing was written


async def test_new_instance_merges_overrides_under_a_new_name(redis_address: str, fl_name: str,
                                                              tmp_path: Path) -> None:
    # Prepare
    cfg = ut_config(redis_address, fl_name)
    job = JobKeys(fl_name)
    client = aioredis.Redis.from_url(f"redis://{redis_address}", decode_responses=True)
    try:
        async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path) as server:
            query = await sched.ok("/queryInstance")
            old_instance = await client.get(job.instance_name)
            old_params = await client.get(job.instance(old_instance).hyper_params)
            # Execute
            reply = await sched.ok("/newInstance", json.dumps(
                {"start_fl_job_threshold": 2, "client_learning_rate": 0.03, "unknown_key": 1}))
            # Assert
            new_instance = await client.get(job.instance_name)
            after = await sched.ok("/queryInstance")
            ttl = await client.ttl(job.instance(new_instance).hyper_params)
            assert reply == {"code": "0", "message": "Start new instance successful."}
            assert query["message"] == "Query Instance successful."
            assert [n["node_id"] for n in query["nodes"]] == [server.node.state.node_id]  # type: ignore[union-attr]
            assert query["result"]["start_fl_job_threshold"] == 1
            assert new_instance != old_instance
            assert new_instance.startswith("i_")
            expected = {**json.loads(old_params), "start_fl_job_threshold": 2, "client_learning_rate": 0.03}
            assert after["result"] == expected
            assert "unknown_key" not in after["result"]
            assert await client.get(job.instance(old_instance).hyper_params) == old_params
            assert ttl > 7 * 86400
    finally:
        await client.aclose()


async def test_a_restarted_scheduler_loses_nothing(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_server(cfg, ut_model(), tmp_path):
        async with running_scheduler(cfg) as first:
            await first.ok("/disableFLS")
        async with running_scheduler(cfg) as second:
            state = await second.ok("/state")
            again = await second.error("/disableFLS")
            await second.ok("/enableFLS")
    assert (state["cluster_state"], len(state["nodes"])) == ("CLUSTER_DISABLE", 1)
    assert again == "The instance has already been disabled."


async def test_cache_down_gives_the_cache_text(fl_name: str) -> None:
    cfg = ut_config(f"127.0.0.1:{free_port()}", fl_name)
    async with running_scheduler(cfg) as sched:
        for path in ("/state", "/queryInstance", "/enableFLS", "/disableFLS"):
            assert await sched.error(path) == "Failed to access the cache server. Please retry later."
        assert await sched.error("/newInstance", "{}") == "Failed to access the cache server. Please retry later."


async def test_openapi_document_lists_the_routes(redis_address: str, fl_name: str) -> None:
    async with running_scheduler(ut_config(redis_address, fl_name)) as sched, \
            sched.session.get(sched.app.url + "/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) >= {"/state", "/enableFLS", "/disableFLS", "/newInstance", "/queryInstance",
                                 "/dashboard/api/overview"}
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)


async def wait_job(server: Any, fl_id: str, timeout_s: float = 10.0) -> Any:
    """startFLJob until it is answered with a FlatBuffer (not a plain-text refusal); returns the parsed reply."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = await server.start_fl_job(fl_id)
        if not body.startswith(b"The "):
            return parse_response_fl_job(body)
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.02)


async def new_instance(sched: Scheduler, server: Any, body: str) -> None:
    """/newInstance, then wait until `server` has switched to the new instance (it notices on its next tick)."""
    old = server.node.state.instance
    await sched.ok("/newInstance", body)

    async def switched() -> bool:
        return bool(server.node.state.instance != old and not server.node.state.safemode)

    await wait_for(switched)


async def test_enable_after_disable_resumes_at_the_next_iteration(redis_address: str, fl_name: str,
                                                                  tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path) as server:
        await sched.ok("/disableFLS")

        async def refused() -> bool:
            return await server.start_fl_job("1001") == DISABLED_TEXT

        await wait_for(refused)
        await sched.ok("/enableFLS")
        job = await wait_job(server, "1001")
    assert (job.retcode, job.iteration) == (200, 2)  # the disable failed iteration 1 (spec §4.7)


async def test_new_instance_restarts_iterations_with_the_new_parameters(redis_address: str, fl_name: str,
                                                                        tmp_path: Path) -> None:
    # Prepare: iteration 1 aggregated, so the model has moved away from the initial one
    model = ut_model()
    cfg = ut_config(redis_address, fl_name)
    upload = {n: np.full(model[n].shape, 3.0, np.float32) for n in model.aggregated_names}
    async with running_scheduler(cfg) as sched, running_server(cfg, model, tmp_path) as server:
        assert parse_response_fl_job(await server.start_fl_job("1001")).retcode == 200
        assert parse_response_update_model(await server.update_model("1001", 1, upload)).retcode == 200
        await server.wait_iteration(2)
        # Execute
        await new_instance(sched, server, '{"start_fl_job_threshold": 2, "client_learning_rate": 0.03}')
        first = await wait_job(server, "2001")
        second = parse_response_fl_job(await server.start_fl_job("2002"))
        third = parse_response_fl_job(await server.start_fl_job("2003"))
        state = await sched.ok("/state")
    # Assert
    assert (first.retcode, first.iteration, second.retcode) == (200, 1, 200)
    assert third.reason.startswith("Current amount for startFLJob has reached the threshold")
    assert first.fl_plan is not None
    assert first.fl_plan.lr == pytest.approx(0.03)
    served = {t.name: np.asarray(t.data) for t in first.feature_map}
    for name in model.aggregated_names:
        np.testing.assert_allclose(served[name], 3.0)  # the model is carried into the new instance
    assert [n["node_id"] for n in state["nodes"]] == [server.node.state.node_id]  # type: ignore[union-attr]


async def test_new_instance_after_finish_restarts_at_iteration_one(redis_address: str, fl_name: str,
                                                                   tmp_path: Path) -> None:
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, fl_iteration_num=1)
    upload = {n: np.full(model[n].shape, 5.0, np.float32) for n in model.aggregated_names}
    async with running_scheduler(cfg) as sched, running_server(cfg, model, tmp_path) as server:
        assert parse_response_fl_job(await server.start_fl_job("1001")).retcode == 200
        assert parse_response_update_model(await server.update_model("1001", 1, upload)).retcode == 200
        await server.wait_iteration(2)
        assert (await sched.ok("/state"))["cluster_state"] == "CLUSTER_FINISH"
        # Execute
        await new_instance(sched, server, "{}")
        job = await wait_job(server, "1002")
        state = await sched.ok("/state")
    # Assert
    assert (job.retcode, job.iteration) == (200, 1)
    served = {t.name: np.asarray(t.data) for t in job.feature_map}
    for name in model.aggregated_names:
        np.testing.assert_allclose(served[name], 5.0)
    assert state["cluster_state"] == "CLUSTER_READY"
