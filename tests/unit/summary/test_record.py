import json
import math
from datetime import datetime

import pytest

from mindfed.summary.record import METRICS_KEYS, InstanceStatus, IterationResult, IterationSummary, RoundVisits

START = datetime(2024, 5, 6, 10, 0, 0, 123_000)
END = datetime(2024, 5, 6, 10, 0, 2, 623_000)


def make_summary(**overrides: object) -> IterationSummary:
    fields: dict[str, object] = {
        "fl_name": "lenet",
        "instance_name": "2024-05-06_09-59-00",
        "fl_iteration_num": 20,
        "current_iteration": 3,
        "instance_status": "running",
        "iteration_result": "success",
        "start_time": START,
        "end_time": END,
        "start_fl_job": RoundVisits(total=10, accept=8),
        "update_model": RoundVisits(total=8, accept=7),
        "get_model": RoundVisits(total=7, accept=7),
        "get_result": RoundVisits(total=0, accept=0),
        "participation_level1": 5,
        "participation_level2": 6,
        "participation_level3": 7,
        "loss_sum": 2.0 * 100 + 1.0 * 300,
        "data_size_sum": 400,
        "accuracy_sum": 0.5 * 10 + 0.9 * 30,
        "eval_data_size_sum": 40,
        "unsupervised_eval": 0.25,
    }
    fields.update(overrides)
    return IterationSummary(**fields)  # type: ignore[arg-type]


def test_json_dict_has_exactly_mindspore_keys_and_values() -> None:
    # Execute
    line = make_summary().to_json_dict()

    # Assert
    assert set(line) == METRICS_KEYS
    assert line["clientVisitedInfo"] == {
        "startFLJobTotalClientNum": 10,
        "startFLJobAcceptClientNum": 8,
        "startFLJobRejectClientNum": 2,
        "updateModelTotalClientNum": 8,
        "updateModelAcceptClientNum": 7,
        "updateModelRejectClientNum": 1,
        "getModelTotalClientNum": 7,
        "getModelAcceptClientNum": 7,
        "getModelRejectClientNum": 0,
        "getResultTotalClientNum": 0,
        "getResultAcceptClientNum": 0,
        "getResultRejectClientNum": 0,
        "participationTimeLevel1": 5,
        "participationTimeLevel2": 6,
        "participationTimeLevel3": 7,
    }
    assert line["currentIteration"] == 3
    assert line["flIterationNum"] == 20
    assert line["flName"] == "lenet"
    assert line["instanceName"] == "2024-05-06_09-59-00"
    assert line["instanceStatus"] == "running"
    assert line["iterationResult"] == "success"
    assert line["startTime"] == "2024-05-06 10:00:00.123"
    assert line["endTime"] == "2024-05-06 10:00:02.623"
    assert line["iterationExecutionTime"] == 2500
    assert line["metricsLoss"] == pytest.approx(500 / 400)
    assert line["metricsAuc"] == pytest.approx(32 / 40)
    assert line["unsupervisedEval"] == 0.25
    assert type(line["instanceStatus"]) is str


def test_no_data_gives_zero_loss_and_accuracy() -> None:
    # Execute
    line = make_summary(loss_sum=0.0, data_size_sum=0, accuracy_sum=0.0, eval_data_size_sum=0).to_json_dict()

    # Assert
    assert line["metricsLoss"] == 0.0
    assert line["metricsAuc"] == 0.0


def test_extra_keys_are_appended_after_mindspore_keys() -> None:
    # Prepare
    summary = make_summary(extra={"testAccuracy": 0.91, "bytesReceived": 1234})

    # Execute
    line = summary.to_json_dict()

    # Assert
    assert line["testAccuracy"] == 0.91
    assert line["bytesReceived"] == 1234
    assert set(line) == METRICS_KEYS | {"testAccuracy", "bytesReceived"}


def test_extra_may_not_overwrite_mindspore_keys() -> None:
    with pytest.raises(ValueError, match="metricsLoss"):
        make_summary(extra={"metricsLoss": 0.0})


def test_extra_is_copied_and_read_only() -> None:
    # Prepare
    extra = {"testAccuracy": 0.5}
    summary = make_summary(extra=extra)

    # Execute
    extra["testAccuracy"] = 0.9

    # Assert
    assert summary.extra["testAccuracy"] == 0.5
    with pytest.raises(TypeError):
        summary.extra["x"] = 1  # type: ignore[index]


def test_non_finite_floats_become_null_like_nlohmann() -> None:
    # Prepare
    summary = make_summary(loss_sum=math.nan, unsupervised_eval=math.inf, extra={"testLoss": math.nan})

    # Execute
    line = summary.to_json_dict()

    # Assert
    assert line["metricsLoss"] is None
    assert line["unsupervisedEval"] is None
    assert line["testLoss"] is None
    json.dumps(line, allow_nan=False)


def test_missing_start_time_uses_end_time_and_zero_duration() -> None:
    line = make_summary(start_time=None, iteration_result="fail").to_json_dict()

    assert line["startTime"] == line["endTime"] == "2024-05-06 10:00:02.623"
    assert line["iterationExecutionTime"] == 0
    assert line["iterationResult"] == "fail"


def test_literals_are_converted_to_enums_and_bad_ones_rejected() -> None:
    summary = make_summary(instance_status="finish", iteration_result="fail")
    assert summary.instance_status is InstanceStatus.FINISH
    assert summary.iteration_result is IterationResult.FAIL

    with pytest.raises(ValueError, match="stopped"):
        make_summary(instance_status="stopped")


def test_round_visits_sum_and_validate() -> None:
    assert RoundVisits(3, 2) + RoundVisits(4, 1) == RoundVisits(7, 3)
    assert (RoundVisits(3, 2) + RoundVisits(4, 1)).reject == 4
    with pytest.raises(ValueError, match="accept"):
        RoundVisits(total=1, accept=2)
