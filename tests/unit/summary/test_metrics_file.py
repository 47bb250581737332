import json
from datetime import datetime
from pathlib import Path

from mindfed.summary.metrics_file import MetricsFile, encode_line, read_all
from mindfed.summary.record import InstanceStatus, IterationResult, IterationSummary, RoundVisits


def make_summary(iteration: int, **extra: object) -> IterationSummary:
    return IterationSummary(
        fl_name="job",
        instance_name="inst",
        fl_iteration_num=5,
        current_iteration=iteration,
        instance_status=InstanceStatus.RUNNING,
        iteration_result=IterationResult.SUCCESS,
        start_time=datetime(2024, 1, 1, 0, 0, iteration),
        end_time=datetime(2024, 1, 1, 0, 0, iteration, 500_000),
        start_fl_job=RoundVisits(2, 2),
        loss_sum=3.0,
        data_size_sum=2.0,
        extra=extra,
    )


def test_line_is_compact_json_with_sorted_keys(tmp_path: Path) -> None:
    # Execute
    line = encode_line(make_summary(1, zeta="é", alpha=1))

    # Assert
    assert line.endswith("\n")
    assert line.count("\n") == 1
    parsed = json.loads(line)
    assert list(parsed) == sorted(parsed)
    assert list(parsed["clientVisitedInfo"]) == sorted(parsed["clientVisitedInfo"])
    assert ", " not in line
    assert '": ' not in line
    assert '"zeta":"é"' in line


def test_append_creates_parent_dirs_and_round_trips(tmp_path: Path) -> None:
    # Prepare
    metrics = MetricsFile(tmp_path / "a" / "b" / "metrics.json")

    # Execute
    metrics.append(make_summary(1))
    metrics.append(make_summary(2, testAccuracy=0.75))

    # Assert
    records = read_all(metrics.path)
    assert [r["currentIteration"] for r in records] == [1, 2]
    assert records[0]["metricsLoss"] == 1.5
    assert records[1]["testAccuracy"] == 0.75
    assert records[0] == make_summary(1).to_json_dict()


def test_read_all_skips_a_torn_last_line(tmp_path: Path) -> None:
    # Prepare
    metrics = MetricsFile(tmp_path / "metrics.json")
    metrics.append(make_summary(1))
    with metrics.path.open("a", encoding="utf-8") as handle:
        handle.write('{"currentIteration": 2, "flNa')

    # Execute
    records = read_all(metrics.path)

    # Assert
    assert [r["currentIteration"] for r in records] == [1]


def test_append_after_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    # Prepare
    metrics = MetricsFile(tmp_path / "metrics.json")
    metrics.append(make_summary(1))
    with metrics.path.open("a", encoding="utf-8") as handle:
        handle.write('{"currentIteration": 2, "fl')

    # Execute
    metrics.append(make_summary(3))

    # Assert
    assert [r["currentIteration"] for r in read_all(metrics.path)] == [1, 3]


def test_read_all_accepts_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"currentIteration":1}\n{"currentIteration":2}', encoding="utf-8")

    assert read_all(path) == [{"currentIteration": 1}, {"currentIteration": 2}]


def test_read_all_of_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_all(tmp_path / "nope.json") == []
