"""Clusters of servers started through the job API (`FLServerJob(...).run`), after MindSpore Federated's
`tests/ut/python/tests/test_fl_server.py` (spec §14): cross-server iterations, hyper-parameter and model-info
consistency (§2.10, §13), checkpoint save/load and Finish (§6.3), and what stopping or killing a server does to the
running iteration (§4.2), MindSpore's way and mindfed's `on_stop="hand_over"`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.e2e.job_harness import (
    FINISHED,
    NOT_AGGREGATED,
    OUT_OF_TIME,
    SUCCEED,
    Jobs,
    aggregated,
    assert_features,
    feature_map,
    features,
    get_model,
    get_result,
    initial_features,
    ports,
    read_metrics,
    start_fl_job,
    until_ok,
    update_model,
    wait_for,
    write_yaml,
)

from mindfed import FeatureMap

pytestmark = pytest.mark.e2e

Update = dict[str, np.ndarray]
POLL_S = 60.0  # generous: the machine is small and shared with other test runs


# --- local helpers ---------------------------------------------------------------------------------------------------

def upload(seed: int, data_size: int) -> Update:
    """A device's upload: its weights already multiplied by its data size (as MindSpore's clients send them)."""
    return {name: value * data_size for name, value in initial_features(100 + seed).items()}


def join(port: int, fl_name: str, fl_id: str, data_size: int) -> Any:
    return until_ok(lambda: start_fl_job(port, fl_name, fl_id, data_size), POLL_S)


def upload_ok(port: int, fl_name: str, fl_id: str, iteration: int, weights: Update) -> None:
    answer = update_model(port, fl_name, fl_id, iteration, weights)
    assert not isinstance(answer, str), answer
    assert answer.retcode == SUCCEED, (answer.retcode, answer.reason)


def model_of(port: int, fl_name: str, iteration: int) -> dict[str, np.ndarray]:
    """The aggregate of `iteration` once this server serves it (getResult first, as MindSpore's client does)."""
    until_ok(lambda: get_result(port, fl_name, iteration), POLL_S)
    return features(until_ok(lambda: get_model(port, fl_name, iteration), POLL_S))


def with_unaggregated(model: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """What startFLJob hands out after an iteration: the aggregate plus the untouched require_aggr=False weight."""
    return {**model, NOT_AGGREGATED: initial_features(seed)[NOT_AGGREGATED]}


def wait_start_answer(port: int, fl_name: str, fl_id: str, accept: Any, what: str,
                      timeout_s: float = POLL_S) -> Any:
    """Repeats startFLJob until `accept(answer)`; returns that answer (every answer before it is discarded)."""
    last: list[Any] = []

    def accepted() -> bool:
        last[:] = [start_fl_job(port, fl_name, fl_id)]
        return bool(accept(last[0]))

    wait_for(accepted, what, timeout_s)
    return last[0]


def is_admitted_in(iteration: int) -> Any:
    return lambda a: not isinstance(a, str) and a.retcode == SUCCEED and a.iteration == iteration


def last_iteration_result(tmp_path: Path) -> str | None:
    lines = read_metrics(tmp_path)
    return str(lines[-1]["iterationResult"]) if lines else None


def feature_map_from(values: dict[str, np.ndarray], require_aggr: dict[str, bool] | None = None) -> FeatureMap:
    flags = require_aggr or {}
    fm = FeatureMap()
    for name, value in values.items():
        fm.add_feature(name, value, require_aggr=flags.get(name, name != NOT_AGGREGATED))
    return fm


# --- cross-server training -------------------------------------------------------------------------------------------

def test_two_servers_two_clients_train_across_servers_until_finish(redis_address: str, fl_name: str, tmp_path: Path,
                                                                    jobs: Jobs) -> None:
    # Prepare: server 2 brings different initial values; the cluster's model (server 1's) wins
    iterations = 3
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2, fl_iteration_num=iterations)
    p1, p2 = ports(2)
    jobs.server(job_yaml, p1, feature_map(0), ckpt="ckpt1")
    jobs.server(job_yaml, p2, feature_map(1), ckpt="ckpt2")
    expected_start = initial_features(0)

    for iteration in range(1, iterations + 1):
        # Execute: d1 joins on server 1 and uploads on server 2, d2 the other way round
        j1 = join(p1, fl_name, "d1", 10)
        j2 = join(p2, fl_name, "d2", 40)
        u1, u2 = upload(iteration, 10), upload(10 + iteration, 40)
        upload_ok(p2, fl_name, "d1", iteration, u1)
        upload_ok(p1, fl_name, "d2", iteration, u2)
        m1, m2 = model_of(p1, fl_name, iteration), model_of(p2, fl_name, iteration)

        # Assert
        assert (j1.iteration, j2.iteration) == (iteration, iteration)
        assert_features(expected_start, features(j1))
        assert_features(expected_start, features(j2))
        expected = aggregated([(u1, 10), (u2, 40)])
        assert_features(expected, m1)
        assert_features(expected, m2)
        for name in m1:
            np.testing.assert_array_equal(m1[name], m2[name], err_msg=name)
        expected_start = with_unaggregated(expected)

    # Execute / Assert: after fl_iteration_num iterations both servers are finished
    for port in (p1, p2):
        wait_start_answer(port, fl_name, "d3", lambda a: a == FINISHED, f"startFLJob FINISHED on {port}")
    assert read_metrics(tmp_path)[-1]["iterationResult"] == "success"


def test_three_servers_adopt_the_first_servers_hyper_parameters(redis_address: str, fl_name: str, tmp_path: Path,
                                                                jobs: Jobs) -> None:
    # Prepare: server 1 declares threshold 2; servers 2 and 3 bring YAMLs saying 1 and 3
    y1 = write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2)
    y2 = write_yaml(tmp_path, fl_name, redis_address, name="job2", start_fl_job_threshold=1)
    y3 = write_yaml(tmp_path, fl_name, redis_address, name="job3", start_fl_job_threshold=3)
    p1, p2, p3 = ports(3)
    jobs.server(y1, p1, feature_map(0), ckpt="ckpt1")
    jobs.server(y2, p2, feature_map(0), ckpt="ckpt2")
    jobs.server(y3, p3, feature_map(0), ckpt="ckpt3")

    # Execute: a second client on server 2 (threshold 1 would refuse it), a third on server 3 (3 would admit it)
    j1 = join(p3, fl_name, "d1", 10)
    j2 = join(p2, fl_name, "d2", 20)
    third = start_fl_job(p3, fl_name, "d3", 30)
    u1, u2 = upload(1, 10), upload(2, 20)
    upload_ok(p1, fl_name, "d1", 1, u1)
    upload_ok(p3, fl_name, "d2", 1, u2)
    models = [model_of(p, fl_name, 1) for p in (p1, p2, p3)]

    # Assert
    assert (j1.iteration, j2.iteration) == (1, 1)
    assert not isinstance(third, str), third
    assert third.retcode == OUT_OF_TIME
    assert "Current amount for startFLJob has reached the threshold" in third.reason
    for model in models:
        assert_features(aggregated([(u1, 10), (u2, 20)]), model)
    assert read_metrics(tmp_path)[-1]["iterationResult"] == "success"


# --- model-info consistency (spec §13) -------------------------------------------------------------------------------

def test_servers_with_another_model_layout_are_refused(redis_address: str, fl_name: str, tmp_path: Path,
                                                       jobs: Jobs) -> None:
    # Prepare: server 1 declares the 4-feature layout
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    p1, p2 = ports(2)
    first = jobs.server(job_yaml, p1, feature_map(0), ckpt="ckpt1")
    values = initial_features(0)
    renamed = feature_map_from({name.replace("feature_bn2", "feature_bn3"): v for name, v in values.items()})
    two = feature_map_from({name: values[name] for name in ("feature_conv", "feature_bn")})
    flipped = feature_map_from(values, {"feature_conv": False})
    smaller = feature_map_from({**values, "feature_conv": np.ones(3, np.float32)})

    # Execute / Assert: while server 1 runs
    with pytest.raises(RuntimeError, match="The features are inconsistent with that declared in distributed cache: "
                                           "cannot find feature feature_bn3"):
        jobs.server(job_yaml, p2, renamed, ckpt="ckpt2")
    with pytest.raises(RuntimeError, match="The number 2 of local features != the number 4 declared in the the "
                                           "distributed cache"):
        jobs.server(job_yaml, p2, two, ckpt="ckpt2")

    # Execute / Assert: the layout outlives the server that declared it
    assert jobs.stop(first) == 0
    with pytest.raises(RuntimeError, match="The number 0 of local features != the number 4 declared in the the "
                                           "distributed cache"):
        jobs.server(job_yaml, p2, FeatureMap(), ckpt="ckpt2")
    with pytest.raises(RuntimeError, match="The feature require_aggr 0 of local != that 1 declared in the "
                                           "distributed cache"):
        jobs.server(job_yaml, p2, flipped, ckpt="ckpt2")
    with pytest.raises(RuntimeError, match="The feature size 12 of local != that 24 declared in the "
                                           "distributed cache"):
        jobs.server(job_yaml, p2, smaller, ckpt="ckpt2")


# --- checkpoints and Finish (spec §6.3) ------------------------------------------------------------------------------

def run_one_iteration(port: int, fl_name: str, iteration: int, expected_start: dict[str, np.ndarray]
                      ) -> dict[str, np.ndarray]:
    """One client, threshold 1: join, check the model handed out, upload; returns the expected aggregate."""
    job = join(port, fl_name, f"d{iteration}", 16)
    assert job.iteration == iteration
    assert_features(expected_start, features(job))
    up = upload(iteration, 16)
    upload_ok(port, fl_name, f"d{iteration}", iteration, up)
    expected = aggregated([(up, 16)])
    assert_features(expected, model_of(port, fl_name, iteration))
    return expected


def test_checkpoint_save_load_and_finish_across_restarts(redis_address: str, fl_name: str, tmp_path: Path,
                                                         jobs: Jobs) -> None:
    # Prepare: 3 of 5 iterations, then SIGTERM
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, fl_iteration_num=5)
    (port,) = ports(1)
    server = jobs.server(job_yaml, port, feature_map(0))
    expected_start = initial_features(0)
    for iteration in (1, 2, 3):
        expected_start = with_unaggregated(run_one_iteration(port, fl_name, iteration, expected_start))
    third = {name: v for name, v in expected_start.items() if name != NOT_AGGREGATED}
    assert jobs.stop(server) == 0

    # Execute: restart with the same checkpoint dir and YAML
    server = jobs.server(job_yaml, port, feature_map(0))
    job4 = join(port, fl_name, "d4", 16)
    model3 = features(until_ok(lambda: get_model(port, fl_name, 3), POLL_S))

    # Assert
    assert job4.iteration == 4
    assert_features(expected_start, features(job4))
    assert_features(third, model3)

    # Execute: iterations 4 (already joined) and 5, then stop and restart once more
    up4 = upload(4, 16)
    upload_ok(port, fl_name, "d4", 4, up4)
    expected4 = aggregated([(up4, 16)])
    assert_features(expected4, model_of(port, fl_name, 4))
    fifth = run_one_iteration(port, fl_name, 5, with_unaggregated(expected4))
    wait_start_answer(port, fl_name, "d6", lambda a: a == FINISHED, "startFLJob FINISHED after iteration 5")
    assert jobs.stop(server) == 0
    jobs.server(job_yaml, port, feature_map(0))

    # Assert: Finish: no more joins, but the last result and model are still served
    wait_start_answer(port, fl_name, "d6", lambda a: a == FINISHED, "startFLJob FINISHED after the restart")
    assert update_model(port, fl_name, "d5", 5, upload(5, 16)) == FINISHED
    assert_features(fifth, model_of(port, fl_name, 5))


# --- stopping and killing servers (spec §4.2) ------------------------------------------------------------------------

def test_stopping_the_only_server_fails_the_iteration_it_held_updates_of(redis_address: str, fl_name: str,
                                                                         tmp_path: Path, jobs: Jobs) -> None:
    # Prepare: one of two clients joined and uploaded
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2)
    (port,) = ports(1)
    server = jobs.server(job_yaml, port, feature_map(0))
    assert join(port, fl_name, "d1", 10).iteration == 1
    upload_ok(port, fl_name, "d1", 1, upload(1, 10))

    # Execute
    assert jobs.stop(server) == 0
    jobs.server(job_yaml, port, feature_map(0))
    started = time.monotonic()
    job = wait_start_answer(port, fl_name, "d1", is_admitted_in(2), "d1 admitted to iteration 2")
    took = time.monotonic() - started

    # Assert: iteration 2 at once (MindSpore: within 3 s; more slack for a loaded machine), the stop failed iteration 1
    assert took < 10, f"iteration 2 only after {took:.1f} s"
    assert_features(initial_features(0), features(job))
    wait_for(lambda: last_iteration_result(tmp_path) is not None, "a metrics line")
    assert last_iteration_result(tmp_path) == "fail"


def test_stopping_a_server_that_held_updates_fails_the_iteration_on_its_peer(redis_address: str, fl_name: str,
                                                                             tmp_path: Path, jobs: Jobs) -> None:
    # Prepare
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2)
    p1, p2 = ports(2)
    s1 = jobs.server(job_yaml, p1, feature_map(0), ckpt="ckpt1")
    jobs.server(job_yaml, p2, feature_map(0), ckpt="ckpt2")
    assert join(p1, fl_name, "d1", 10).iteration == 1
    upload_ok(p1, fl_name, "d1", 1, upload(1, 10))

    # Execute
    assert jobs.stop(s1) == 0
    job = wait_start_answer(p2, fl_name, "d1", is_admitted_in(2), "d1 admitted to iteration 2 on server 2")

    # Assert
    assert job.iteration == 2
    wait_for(lambda: last_iteration_result(tmp_path) is not None, "a metrics line")
    assert last_iteration_result(tmp_path) == "fail"


def test_stopping_a_server_without_updates_keeps_the_iteration(redis_address: str, fl_name: str, tmp_path: Path,
                                                               jobs: Jobs) -> None:
    # Prepare: d1 joined on server 1 but uploaded on server 2
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2)
    p1, p2 = ports(2)
    s1 = jobs.server(job_yaml, p1, feature_map(0), ckpt="ckpt1")
    jobs.server(job_yaml, p2, feature_map(0), ckpt="ckpt2")
    assert join(p1, fl_name, "d1", 10).iteration == 1
    u1 = upload(1, 10)
    upload_ok(p2, fl_name, "d1", 1, u1)

    # Execute
    assert jobs.stop(s1) == 0
    again = start_fl_job(p2, fl_name, "d1", 10)
    j2 = join(p2, fl_name, "d2", 30)
    u2 = upload(2, 30)
    upload_ok(p2, fl_name, "d2", 1, u2)

    # Assert: still iteration 1, completed by the second client on server 2
    assert not isinstance(again, str), again
    assert again.retcode == OUT_OF_TIME
    assert "Updating device metadata failed for fl id d1" in again.reason
    assert j2.iteration == 1
    assert_features(aggregated([(u1, 10), (u2, 30)]), model_of(p2, fl_name, 1))
    assert read_metrics(tmp_path)[-1]["iterationResult"] == "success"


def test_hand_over_lets_the_peer_finish_the_iteration_with_the_stopped_servers_updates(
        redis_address: str, fl_name: str, tmp_path: Path, jobs: Jobs) -> None:
    # Prepare: mindfed's on_stop="hand_over" on both servers
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2)
    p1, p2 = ports(2)
    s1 = jobs.server(job_yaml, p1, feature_map(0), ckpt="ckpt1", on_stop="hand_over")
    jobs.server(job_yaml, p2, feature_map(0), ckpt="ckpt2", on_stop="hand_over")
    assert join(p1, fl_name, "d1", 10).iteration == 1
    u1 = upload(1, 10)
    upload_ok(p1, fl_name, "d1", 1, u1)

    # Execute
    assert jobs.stop(s1) == 0
    j2 = join(p2, fl_name, "d2", 30)
    u2 = upload(2, 30)
    upload_ok(p2, fl_name, "d2", 1, u2)
    model = model_of(p2, fl_name, 1)

    # Assert: both updates in the aggregate
    assert j2.iteration == 1
    assert_features(aggregated([(u1, 10), (u2, 30)]), model)
    wait_for(lambda: last_iteration_result(tmp_path) is not None, "a metrics line")
    assert read_metrics(tmp_path)[-1]["iterationResult"] == "success"


def test_a_server_starts_next_to_a_killed_one_within_20_s(redis_address: str, fl_name: str, tmp_path: Path,
                                                          jobs: Jobs) -> None:
    # Prepare
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2)
    p1, p2 = ports(2)
    s1 = jobs.server(job_yaml, p1, feature_map(0), ckpt="ckpt1")
    assert join(p1, fl_name, "d1", 10).iteration == 1

    # Execute: SIGKILL leaves server 1's registration until its heartbeat expires (default TTL 10 s)
    jobs.kill(s1)
    started = time.monotonic()
    jobs.server(job_yaml, p2, feature_map(1), ckpt="ckpt2")
    took = time.monotonic() - started
    job = join(p2, fl_name, "d2", 10)

    # Assert: server 1 held no update, so iteration 1 goes on with server 1's model
    assert not s1.is_alive()
    assert took < 20, f"server 2 started only after {took:.1f} s"
    assert job.iteration == 1
    assert_features(initial_features(0), features(job))
