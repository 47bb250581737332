"""MindSpore Federated's `test_fl_scheduler.py` (spec §14) under its own harness pattern: `FlSchedulerJob(...).run()`
and `FLServerJob(...).run(...)` in forked processes, an operator calling the scheduler's REST routes (spec §6.1) and
devices calling the servers' rounds over HTTP.

Bullets covered: invalid manage addresses; `/state` before, with 1 and 2 servers and after SIGTERM; `/disableFLS` and
`/enableFLS` (every device round refused while disabled, the disabled iteration fails, the job runs to its end, then
both routes answer "completed"); `/newInstance` and `/queryInstance` (a higher threshold, a new learning rate with the
model carried over, a new instance after the job finished).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.e2e.job_harness import (
    FINISHED,
    NOT_AGGREGATED,
    OUT_OF_TIME,
    SAFEMODE,
    SUC_NOT_READY,
    SUCCEED,
    Jobs,
    aggregated,
    assert_features,
    feature_map,
    features,
    get_model,
    get_result,
    initial_features,
    manage,
    ports,
    read_metrics,
    start_fl_job,
    until_ok,
    update_model,
    wait_for,
    write_yaml,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
POLL_S = 60.0  # generous: the machine is small and other suites run beside this one
DATA_SIZE = 32
YAML_LR = 0.01  # client.client_learning_rate of yamls/lenet.yaml


# --- local helpers ----------------------------------------------------------------------------------------------------

def refusal(port: int, route: str, body: Mapping[str, Any] | None = None) -> str:
    """The `error_message` of a refused management call, after checking MindSpore's error form (spec §6.1):
    HTTP 400 and exactly `{"code": "1", "error_message": ...}`."""
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/{route}", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raise AssertionError(f"/{route} was not refused: HTTP {resp.status} {resp.read()!r}")
    except urllib.error.HTTPError as exc:
        with exc:
            status, answer = exc.code, json.loads(exc.read())
    assert status == 400, (status, answer)
    assert sorted(answer) == ["code", "error_message"], answer
    assert answer["code"] == "1", answer
    return str(answer["error_message"])


def node_count(sched_port: int) -> int:
    return len(manage(sched_port, "state").get("nodes", []))


def until_served(call: Callable[[], Any], timeout_s: float = POLL_S) -> Any:
    """Like until_ok, and also waits while the server still refuses the round as disabled (it reads `/enableFLS`
    on its next tick)."""
    return until_ok(call, timeout_s, wait_texts=(FINISHED, SAFEMODE))


def served_model(aggregate: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What startFLJob hands out after an aggregation: the aggregate plus the initial require_aggr=False weight."""
    return {**aggregate, NOT_AGGREGATED: initial_features(0)[NOT_AGGREGATED]}


def run_iteration(port: int, fl_name: str, iteration: int, clients: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    """Every client joins, uploads `initial_features(seed)` and the iteration completes; returns the aggregate."""
    for fl_id, _ in clients:
        job = until_ok(partial(start_fl_job, port, fl_name, fl_id, DATA_SIZE), POLL_S)
        assert job.iteration == iteration
    for fl_id, seed in clients:
        assert update_model(port, fl_name, fl_id, iteration, initial_features(seed)).retcode == SUCCEED
    until_ok(lambda: get_result(port, fl_name, iteration), POLL_S)
    return aggregated([(initial_features(seed), DATA_SIZE) for _, seed in clients])


def new_instance_served(sched_port: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """/newInstance, then waits until the (single) server has re-registered under the new instance."""
    answer = manage(sched_port, "newInstance", body)
    assert answer.get("code") == "0", answer
    wait_for(lambda: node_count(sched_port) == 1, "the server re-registered under the new instance", POLL_S)
    return answer


# --- invalid manage addresses -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["127.0.0.1:4000x", "127.0.0.1:", "127.0.0.1", "256.0.0.1:5000", 5000])
def test_scheduler_job_start_errors_reach_the_harness(redis_address: str, fl_name: str, tmp_path: Path, jobs: Jobs,
                                                      address: object) -> None:
    # Prepare
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    expected = ("Parameter 'manage_address' should be str" if isinstance(address, int)
                else "Failed to start scheduler http server, invalid server address:")

    # Execute / Assert
    with pytest.raises(RuntimeError, match=expected):
        jobs.scheduler(job_yaml, address)


# --- /state -----------------------------------------------------------------------------------------------------------

def test_routes_before_any_server_cannot_find_the_cluster(redis_address: str, fl_name: str, tmp_path: Path,
                                                          jobs: Jobs) -> None:
    # Prepare
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    (sched_port,) = ports(1)
    jobs.scheduler(job_yaml, f"127.0.0.1:{sched_port}")
    missing = f"Cannot find cluster info for {fl_name}"

    # Execute / Assert
    assert refusal(sched_port, "state") == missing
    assert refusal(sched_port, "queryInstance") == missing
    assert refusal(sched_port, "newInstance", {"start_fl_job_threshold": 2}) == f"New instance failed: {missing}"
    assert refusal(sched_port, "enableFLS") == missing
    assert refusal(sched_port, "disableFLS") == missing


def test_state_lists_servers_as_they_join_and_leave(redis_address: str, fl_name: str, tmp_path: Path,
                                                    jobs: Jobs) -> None:
    # Prepare
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2)
    sched_port, *server_ports = ports(3)
    jobs.scheduler(job_yaml, f"127.0.0.1:{sched_port}")
    before = manage(sched_port, "state")

    # Execute: one server, then two
    servers = [jobs.server(job_yaml, server_ports[0], feature_map(0), ckpt="ckpt0")]
    with_one = manage(sched_port, "state")
    servers.append(jobs.server(job_yaml, server_ports[1], feature_map(0), ckpt="ckpt1"))
    with_two = manage(sched_port, "state")
    joined = [until_ok(partial(start_fl_job, p, fl_name, f"dev{i}"), POLL_S)
              for i, p in enumerate(server_ports)]

    # Assert
    assert before == {"code": "1", "error_message": f"Cannot find cluster info for {fl_name}"}
    for state, count in ((with_one, 1), (with_two, 2)):
        assert list(state) == ["cluster_state", "code", "message", "nodes"]
        assert (state["cluster_state"], state["code"], state["message"]) == (
            "CLUSTER_READY", "0", "Get cluster state successful.")
        assert len(state["nodes"]) == count
        assert [n["node_id"] for n in state["nodes"]] == sorted(n["node_id"] for n in state["nodes"])
        for node in state["nodes"]:
            assert list(node) == ["node_id", "role", "tcp_address"]
            assert node["role"] == "SERVER"
            assert node["tcp_address"] in node["node_id"]
    assert with_one["nodes"][0] in with_two["nodes"]
    for job in joined:
        assert job.iteration == 1
        assert_features(initial_features(0), features(job))  # both servers serve the same initial model

    # Execute / Assert: SIGTERM leaves the cluster, one server at a time
    assert jobs.stop(servers[0]) == 0
    left = manage(sched_port, "state")
    assert [n for n in with_two["nodes"] if n != with_one["nodes"][0]] == left["nodes"]
    assert jobs.stop(servers[1]) == 0
    after = manage(sched_port, "state")
    assert after["code"] == "0"
    assert "nodes" not in after
    assert list(after) == ["cluster_state", "code", "message"]


# --- /disableFLS, /enableFLS ------------------------------------------------------------------------------------------

def test_disable_refuses_every_device_round_and_enable_resumes_at_the_next_iteration(
        redis_address: str, fl_name: str, tmp_path: Path, jobs: Jobs) -> None:
    # Prepare: a 3-iteration job; device d1 has joined iteration 1
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, fl_iteration_num=3)
    sched_port, port = ports(2)
    jobs.scheduler(job_yaml, f"127.0.0.1:{sched_port}")
    jobs.server(job_yaml, port, feature_map(0))
    already_enabled = refusal(sched_port, "enableFLS")
    assert until_ok(lambda: start_fl_job(port, fl_name, "d1", DATA_SIZE), POLL_S).iteration == 1

    # Execute: disable
    disabled = manage(sched_port, "disableFLS")
    disabled_again = refusal(sched_port, "disableFLS")
    disabled_state = manage(sched_port, "state")["cluster_state"]
    wait_for(lambda: start_fl_job(port, fl_name, "d2", DATA_SIZE) == FINISHED, "the server refuses devices", POLL_S)
    refused = {"startFLJob": start_fl_job(port, fl_name, "d1", DATA_SIZE),
               "updateModel": update_model(port, fl_name, "d1", 1, initial_features(1)),
               "getModel": get_model(port, fl_name, 1),
               "getResult": get_result(port, fl_name, 1)}

    # Execute: enable, then run the job to its end
    enabled = manage(sched_port, "enableFLS")
    enabled_state = manage(sched_port, "state")["cluster_state"]
    resumed = until_served(lambda: start_fl_job(port, fl_name, "d1", DATA_SIZE))
    assert update_model(port, fl_name, "d1", resumed.iteration, initial_features(1)).retcode == SUCCEED
    until_ok(lambda: get_result(port, fl_name, 2), POLL_S)
    last = until_ok(lambda: start_fl_job(port, fl_name, "d1", DATA_SIZE), POLL_S)
    assert update_model(port, fl_name, "d1", 3, initial_features(2)).retcode == SUCCEED
    until_ok(lambda: get_result(port, fl_name, 3), POLL_S)
    wait_for(lambda: manage(sched_port, "state").get("cluster_state") == "CLUSTER_FINISH", "CLUSTER_FINISH", POLL_S)
    wait_for(lambda: len(read_metrics(tmp_path)) == 3, "a metrics line per iteration", POLL_S)

    # Assert: disable / enable answers (spec §6.1)
    assert already_enabled == "The instance has already been enabled."
    assert disabled == {"code": "0", "message": "start disabling FL-Server successful."}
    assert disabled_again == "The instance has already been disabled."
    assert disabled_state == "CLUSTER_DISABLE"
    assert refused == dict.fromkeys(refused, FINISHED)
    assert enabled == {"code": "0", "message": "start enabling FL-Server successful."}
    assert enabled_state == "CLUSTER_READY"
    # the disable failed iteration 1: iteration 2 starts from the initial model
    assert resumed.iteration == 2
    assert_features(initial_features(0), features(resumed))
    assert last.iteration == 3
    assert_features(served_model(aggregated([(initial_features(1), DATA_SIZE)])), features(last))
    lines = read_metrics(tmp_path)
    assert [(m["currentIteration"], m["iterationResult"]) for m in lines] == [(1, "fail"), (2, "success"),
                                                                              (3, "success")]
    assert lines[0]["iterationReason"] == "Disable instance"

    # Assert: the finished job
    assert refusal(sched_port, "enableFLS") == "The instance is completed and cannot be enabled."
    assert refusal(sched_port, "disableFLS") == "The instance is completed and cannot be disabled."
    assert manage(sched_port, "state")["cluster_state"] == "CLUSTER_FINISH"
    assert start_fl_job(port, fl_name, "d3", DATA_SIZE) == FINISHED
    assert update_model(port, fl_name, "d1", 3, initial_features(2)) == FINISHED
    final = get_model(port, fl_name, 3)  # a finished job still serves its model and results
    assert final.retcode == SUCCEED
    assert_features(aggregated([(initial_features(2), DATA_SIZE)]), features(final))
    assert get_result(port, fl_name, 3).retcode == SUCCEED


# --- /newInstance, /queryInstance -------------------------------------------------------------------------------------

def test_new_instance_restarts_the_job_with_the_new_hyper_params_and_the_current_model(
        redis_address: str, fl_name: str, tmp_path: Path, jobs: Jobs) -> None:
    # Prepare: iteration 1 aggregated (threshold 1), so the model has moved away from the initial one
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, fl_iteration_num=5)
    sched_port, port = ports(2)
    jobs.scheduler(job_yaml, f"127.0.0.1:{sched_port}")
    jobs.server(job_yaml, port, feature_map(0))
    queried = manage(sched_port, "queryInstance")
    first_plan = until_ok(lambda: start_fl_job(port, fl_name, "d1", DATA_SIZE), POLL_S).fl_plan
    assert update_model(port, fl_name, "d1", 1, initial_features(1)).retcode == SUCCEED
    until_ok(lambda: get_result(port, fl_name, 1), POLL_S)
    first_aggregate = aggregated([(initial_features(1), DATA_SIZE)])

    # Execute: a new instance that needs two clients
    threshold_answer = new_instance_served(sched_port, {"start_fl_job_threshold": 2})
    queried_two = manage(sched_port, "queryInstance")
    e1 = until_ok(lambda: start_fl_job(port, fl_name, "e1", DATA_SIZE), POLL_S)
    e1_update = update_model(port, fl_name, "e1", 1, initial_features(2))
    one_client_result = get_result(port, fl_name, 1)
    e2 = start_fl_job(port, fl_name, "e2", DATA_SIZE)
    e3 = start_fl_job(port, fl_name, "e3", DATA_SIZE)
    e2_update = update_model(port, fl_name, "e2", 1, initial_features(3))
    until_ok(lambda: get_result(port, fl_name, 1), POLL_S)
    two_client_aggregate = aggregated([(initial_features(2), DATA_SIZE), (initial_features(3), DATA_SIZE)])

    # Execute: a new instance with another learning rate
    lr_answer = new_instance_served(sched_port, {"client_learning_rate": 0.03})
    queried_lr = manage(sched_port, "queryInstance")
    f1 = until_ok(lambda: start_fl_job(port, fl_name, "f1", DATA_SIZE), POLL_S)

    # Assert: /queryInstance before and after each new instance
    assert (queried["code"], queried["message"]) == ("0", "Query Instance successful.")
    assert list(queried) == ["code", "message", "nodes", "result"]
    assert [n["role"] for n in queried["nodes"]] == ["SERVER"]
    assert queried["result"]["start_fl_job_threshold"] == 1
    assert queried["result"]["client_learning_rate"] == pytest.approx(YAML_LR)
    assert threshold_answer == {"code": "0", "message": "Start new instance successful."}
    assert queried_two["result"] == {**queried["result"], "start_fl_job_threshold": 2}
    assert lr_answer == {"code": "0", "message": "Start new instance successful."}
    assert queried_lr["result"] == {**queried["result"], "start_fl_job_threshold": 2, "client_learning_rate": 0.03}

    # Assert: threshold 2 restarts at iteration 1 from the current model; one client does not complete it
    assert first_plan is not None
    assert first_plan.lr == pytest.approx(YAML_LR)
    assert e1.iteration == 1
    assert_features(served_model(first_aggregate), features(e1))
    assert e1_update.retcode == SUCCEED
    assert one_client_result.retcode == SUC_NOT_READY
    assert (e2.retcode, e2.iteration) == (SUCCEED, 1)  # the second client's join is accepted
    assert e3.retcode == OUT_OF_TIME
    assert e3.reason.startswith("Current amount for startFLJob has reached the threshold")
    assert e2_update.retcode == SUCCEED

    # Assert: the learning rate reaches the devices' FLPlan and the model is carried over
    assert f1.iteration == 1
    assert f1.fl_plan is not None
    assert f1.fl_plan.lr == pytest.approx(0.03)
    assert_features(served_model(two_client_aggregate), features(f1))


def test_new_instance_after_the_job_finished_restarts_at_iteration_one_with_the_last_model(
        redis_address: str, fl_name: str, tmp_path: Path, jobs: Jobs) -> None:
    # Prepare: a one-iteration job, run to its end
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, fl_iteration_num=1)
    sched_port, port = ports(2)
    jobs.scheduler(job_yaml, f"127.0.0.1:{sched_port}")
    jobs.server(job_yaml, port, feature_map(0))
    last_aggregate = run_iteration(port, fl_name, 1, [("d1", 1)])
    wait_for(lambda: manage(sched_port, "state").get("cluster_state") == "CLUSTER_FINISH", "CLUSTER_FINISH", POLL_S)
    finished_join = start_fl_job(port, fl_name, "d2", DATA_SIZE)
    queried = manage(sched_port, "queryInstance")

    # Execute
    answer = new_instance_served(sched_port, {})
    restarted = until_ok(lambda: start_fl_job(port, fl_name, "d2", DATA_SIZE), POLL_S)
    state = manage(sched_port, "state")
    queried_after = manage(sched_port, "queryInstance")

    # Assert
    assert finished_join == FINISHED
    assert answer == {"code": "0", "message": "Start new instance successful."}
    assert state["cluster_state"] == "CLUSTER_READY"
    assert queried_after["result"] == queried["result"]
    assert restarted.iteration == 1
    assert_features(served_model(last_aggregate), features(restarted))
