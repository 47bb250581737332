"""One server started through the job API (`FLServerJob(...).run(feature_map, callback)` in a forked process), driven
by devices over HTTP: the single-server cases of MindSpore Federated's `tests/ut/python/tests/test_fl_server.py`
(spec §14), with the reasons and codes of spec §3.5 and the metrics of spec §9 and §12."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from tests.e2e.job_harness import (
    FINISHED,
    NOT_AGGREGATED,
    OUT_OF_TIME,
    REQUEST_ERROR,
    SAFEMODE,
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

from mindfed.model.ckpt import read_ckpt

pytestmark = pytest.mark.e2e

NO_COMPRESS = 0  # mindspore.fl.schema.CompressType.NO_COMPRESS
START_FL_JOB_ENOUGH = "Current amount for startFLJob has reached the threshold"
UPDATE_MODEL_ENOUGH = "Current amount for updateModel is enough."
Weights = dict[str, npt.NDArray[np.float32]]


def outside_safemode(call: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    """The first answer that is not the safemode text (an iteration switch in progress, spec §4.6)."""
    deadline = time.monotonic() + timeout_s
    while (answer := call()) == SAFEMODE:
        assert time.monotonic() < deadline, f"still in safemode after {timeout_s} s"
        time.sleep(0.1)
    return answer


def first_answer(call: Callable[[], Any]) -> Any:
    """The first parsed (FlatBuffer) answer of a round, past any safemode text."""
    answer = outside_safemode(call)
    assert not isinstance(answer, str), answer
    return answer


def metrics_of(tmp_path: Path, iteration: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """The metrics line of `iteration`, once the summary (spec §9) has written it."""
    wait_for(lambda: any(line["currentIteration"] == iteration for line in read_metrics(tmp_path)),
             f"metrics line of iteration {iteration}", timeout_s)
    line: dict[str, Any] = [m for m in read_metrics(tmp_path) if m["currentIteration"] == iteration][-1]
    return line


def test_one_server_one_client_runs_five_iterations_then_finishes(redis_address: str, fl_name: str, tmp_path: Path,
                                                                   jobs: Jobs) -> None:
    # Prepare
    iterations = 5
    (port,) = ports(1)
    jobs.server(write_yaml(tmp_path, fl_name, redis_address, fl_iteration_num=iterations), port, feature_map(0))
    initial, fl_id = initial_features(0), "1xxx"
    expected_start = dict(initial)  # what startFLJob of the next iteration serves
    update: Weights = {}
    data_size = 32

    for iteration in range(1, iterations + 1):
        data_size = 32 if iteration == 1 else iteration + 8
        update = initial_features(100 + iteration)

        # Execute
        job = until_ok(partial(start_fl_job, port, fl_name, fl_id, data_size))
        uploaded = update_model(port, fl_name, fl_id, iteration, update)
        until_ok(partial(get_result, port, fl_name, iteration))
        model = until_ok(partial(get_model, port, fl_name, iteration))

        # Assert: startFLJob serves the previous aggregate plus the initial require_aggr=False weight
        assert (job.iteration, job.is_selected) == (iteration, True)
        assert (job.upload_compress_type, job.download_compress_type) == (NO_COMPRESS, NO_COMPRESS)
        assert_features(expected_start, features(job))
        assert uploaded.retcode == SUCCEED, uploaded.reason
        expected_model = aggregated([(update, data_size)])
        assert_features(expected_model, features(model))
        expected_start = {**expected_model, NOT_AGGREGATED: initial[NOT_AGGREGATED]}

        if iteration < iterations:
            # Execute / Assert: the iteration has moved, so the device's metadata of the old one is gone
            late = first_answer(partial(update_model, port, fl_name, fl_id, iteration, update))
            assert late.retcode == OUT_OF_TIME
            assert f"devices_meta for {fl_id} is not set. Please retry later." in late.reason

    # Execute: the job is finished
    job_after = outside_safemode(lambda: start_fl_job(port, fl_name, fl_id, data_size))
    update_after = outside_safemode(lambda: update_model(port, fl_name, fl_id, iterations, update))
    result_after = get_result(port, fl_name, iterations)
    model_after = get_model(port, fl_name, iterations)

    # Assert: device rounds get the finished text; getResult and getModel still answer
    assert job_after == FINISHED
    assert update_after == FINISHED
    assert not isinstance(result_after, str), result_after
    assert result_after.retcode == SUCCEED
    assert not isinstance(model_after, str), model_after
    assert model_after.retcode == SUCCEED
    assert_features(aggregated([(update, data_size)]), features(model_after))
    assert metrics_of(tmp_path, iterations)["iterationResult"] == "success"


def test_start_fl_job_refusals_follow_mindspore(redis_address: str, fl_name: str, tmp_path: Path,
                                                jobs: Jobs) -> None:
    # Prepare
    (port,) = ports(1)
    jobs.server(write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2), port, feature_map(0))
    fl_id = "1xxx"

    # Execute
    too_small = first_answer(lambda: start_fl_job(port, fl_name, fl_id, 0))
    too_large = start_fl_job(port, fl_name, fl_id, 0x10000)
    first = start_fl_job(port, fl_name, fl_id, 16)
    again = start_fl_job(port, fl_name, fl_id, 16)
    second = start_fl_job(port, fl_name, fl_id + "2", 16)
    old_after_threshold = start_fl_job(port, fl_name, fl_id, 16)
    new_after_threshold = start_fl_job(port, fl_name, fl_id + "xx", 16)

    # Assert
    assert too_small.retcode == OUT_OF_TIME
    assert "FL job data size is not enough" in too_small.reason
    assert too_large.retcode == OUT_OF_TIME
    assert "FL job data size is too large" in too_large.reason
    for joined in (first, second):
        assert (joined.retcode, joined.iteration) == (SUCCEED, 1)
        assert len(joined.feature_map) == 4
    assert again.retcode == OUT_OF_TIME
    assert f"Updating device metadata failed for fl id {fl_id}" in again.reason
    for refused in (old_after_threshold, new_after_threshold):
        assert refused.retcode == OUT_OF_TIME
        assert START_FL_JOB_ENOUGH in refused.reason


def test_update_model_refusals_follow_mindspore(redis_address: str, fl_name: str, tmp_path: Path,
                                                jobs: Jobs) -> None:
    # Prepare
    (port,) = ports(1)
    jobs.server(write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2), port, feature_map(0))
    fl_id, fl_id2 = "1xxx", "1xxx_2"
    job = until_ok(lambda: start_fl_job(port, fl_name, fl_id, 16))
    served = features(job)
    valid = initial_features(7)

    # Execute
    partial_upload = update_model(port, fl_name, fl_id, 1, {"feature_bn": served["feature_bn"] * 4})
    wrong_shape = update_model(port, fl_name, fl_id, 1, {"feature_conv": np.ones((2, 2), np.float32),
                                                          "feature_bn": served["feature_bn"] * 6,
                                                          "feature_bn2": served["feature_bn2"] * 6})
    unknown = update_model(port, fl_name, fl_id + "_invalid", 1, valid)
    wrong_iteration = update_model(port, fl_name, fl_id, 2, valid)
    full_after_partial = update_model(port, fl_name, fl_id, 1, valid)
    twice = update_model(port, fl_name, fl_id, 1, valid)
    job2 = start_fl_job(port, fl_name, fl_id2, 8)
    second = update_model(port, fl_name, fl_id2, 1, initial_features(8))
    enough = update_model(port, fl_name, fl_id, 1, valid)

    # Assert: the partial upload counted, so the full one from the same device is refused
    assert (partial_upload.retcode, partial_upload.reason) == (SUCCEED, "success not ready")
    assert wrong_shape.retcode == REQUEST_ERROR
    assert "Verify model feature map failed" in wrong_shape.reason
    assert unknown.retcode == OUT_OF_TIME
    assert f"devices_meta for {fl_id}_invalid is not set" in unknown.reason
    assert wrong_iteration.retcode == OUT_OF_TIME
    assert "UpdateModel iteration number is invalid:2, current iteration:1" in wrong_iteration.reason
    for refused in (full_after_partial, twice):
        assert refused.retcode == OUT_OF_TIME
        assert f"Updating metadata of UpdateModelClientList failed for fl id {fl_id}" in refused.reason
    assert (job2.retcode, len(job2.feature_map)) == (SUCCEED, 4)
    assert second.retcode == SUCCEED, second.reason
    assert not isinstance(enough, str), enough
    assert enough.retcode == OUT_OF_TIME
    assert UPDATE_MODEL_ENOUGH in enough.reason


def test_two_clients_aggregate_by_data_size_and_report_weighted_loss(redis_address: str, fl_name: str,
                                                                     tmp_path: Path, jobs: Jobs) -> None:
    # Prepare
    (port,) = ports(1)
    jobs.server(write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2), port, feature_map(0))
    u1, u2 = initial_features(11), initial_features(12)

    # Execute
    until_ok(lambda: start_fl_job(port, fl_name, "fl_id_xxxx", 10))
    first = update_model(port, fl_name, "fl_id_xxxx", 1, u1, loss=1.0)
    until_ok(lambda: start_fl_job(port, fl_name, "fl_id_xxxx2", 40))
    second = update_model(port, fl_name, "fl_id_xxxx2", 1, u2, loss=9.0)
    until_ok(lambda: get_result(port, fl_name, 1))
    model = until_ok(lambda: get_model(port, fl_name, 1))

    # Assert
    assert first.retcode == second.retcode == SUCCEED
    assert_features(aggregated([(u1, 10), (u2, 40)]), features(model))
    line = metrics_of(tmp_path, 1)
    assert line["iterationResult"] == "success"
    assert line["metricsLoss"] == pytest.approx((1.0 * 10 + 9.0 * 40) / 50)


def test_unsupervised_silhouette_of_three_clients_reaches_metrics(redis_address: str, fl_name: str,
                                                                  tmp_path: Path, jobs: Jobs) -> None:
    # Prepare
    (port,) = ports(1)
    unsupervised = {"cluster_client_num": 3, "eval_type": "SILHOUETTE_SCORE"}
    jobs.server(write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=3, unsupervised=unsupervised),
                port, feature_map(0))
    update = initial_features(21)
    eval_data = {"fl_id_1": [3.0, 2.0, 1.0], "fl_id_2": [4.0, 3.0, 2.0], "fl_id_3": [3.0, 4.0, 5.0]}

    # Execute
    for fl_id in eval_data:
        until_ok(partial(start_fl_job, port, fl_name, fl_id, 10))
    uploads = [update_model(port, fl_name, fl_id, 1, update, eval_data=vector) for fl_id, vector in eval_data.items()]
    until_ok(lambda: get_result(port, fl_name, 1))

    # Assert: spec §12, MindSpore's UT value
    assert [u.retcode for u in uploads] == [SUCCEED] * 3
    assert metrics_of(tmp_path, 1)["unsupervisedEval"] == pytest.approx(0.363489, abs=1e-6)


def test_recovery_checkpoint_keeps_the_weight_that_is_not_aggregated(redis_address: str, fl_name: str,
                                                                     tmp_path: Path, jobs: Jobs) -> None:
    # Prepare
    (port,) = ports(1)
    jobs.server(write_yaml(tmp_path, fl_name, redis_address), port, feature_map(0))
    update = initial_features(31)
    ckpt_dir = tmp_path / "ckpt"

    # Execute
    until_ok(lambda: start_fl_job(port, fl_name, "d1", 32))
    assert update_model(port, fl_name, "d1", 1, update).retcode == SUCCEED
    until_ok(lambda: get_result(port, fl_name, 1))
    wait_for(lambda: any(ckpt_dir.glob(f"{fl_name}_recovery_iteration_1_*.ckpt")), "recovery checkpoint", 30)

    # Assert: the aggregate plus the initial require_aggr=False weight (spec §13)
    (path,) = ckpt_dir.glob(f"{fl_name}_recovery_iteration_1_*.ckpt")
    saved = {name: np.asarray(value, np.float32).reshape(-1) for name, value in read_ckpt(path).items()}
    assert_features({**aggregated([(update, 32)]), NOT_AGGREGATED: initial_features(0)[NOT_AGGREGATED]}, saved)
