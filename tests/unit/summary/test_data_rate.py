import json
from datetime import datetime
from pathlib import Path

import pytest

from mindfed.summary.data_rate import DataRateRecorder

NOON = datetime(2024, 6, 1, 12, 0, 0).timestamp()


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_flush_writes_one_line_per_finished_second(tmp_path: Path) -> None:
    # Prepare
    recorder = DataRateRecorder(str(tmp_path / "rate"), "127.0.0.1:6666")
    recorder.record("startFLJob", 100, 10, now=NOON + 0.1)
    recorder.record("updateModel", 1000, 20, now=NOON + 0.9)
    recorder.record("getModel", 5, 500, now=NOON + 2.5)
    recorder.record("getModel", 5, 500, now=NOON + 3.2)

    # Execute
    written = recorder.flush(now=NOON + 3.5)

    # Assert
    path = tmp_path / "rate" / "2024-06-01_flow_server127.0.0.1:6666.json"
    assert written == 2
    assert read_lines(path) == [
        {"receive": 1100, "send": 30, "time": "2024-06-01 12:00:00"},
        {"receive": 5, "send": 500, "time": "2024-06-01 12:00:02"},
    ]
    assert path.read_text(encoding="utf-8").startswith('{"receive":1100,"send":30,"time":')


def test_current_second_is_kept_until_closed(tmp_path: Path) -> None:
    # Prepare
    recorder = DataRateRecorder(str(tmp_path), "h:1")
    recorder.record("getModel", 1, 2, now=NOON + 0.2)
    recorder.flush(now=NOON + 0.5)
    recorder.record("getModel", 1, 2, now=NOON + 0.7)

    # Execute
    assert recorder.flush(now=NOON + 0.8) == 0
    written = recorder.flush(now=NOON + 0.8, include_current=True)

    # Assert
    assert written == 1
    assert read_lines(recorder.file_path(datetime.fromtimestamp(NOON))) == [
        {"receive": 2, "send": 4, "time": "2024-06-01 12:00:00"}
    ]
    assert recorder.flush(now=NOON + 10, include_current=True) == 0


def test_seconds_on_two_days_go_to_two_files(tmp_path: Path) -> None:
    # Prepare
    midnight = datetime(2024, 6, 2, 0, 0, 0).timestamp()
    recorder = DataRateRecorder(str(tmp_path), "h:1")
    recorder.record("getKeys", 1, 1, now=midnight - 1)
    recorder.record("getKeys", 2, 2, now=midnight)

    # Execute
    recorder.flush(now=midnight + 5)

    # Assert
    assert read_lines(tmp_path / "2024-06-01_flow_serverh:1.json")[0]["time"] == "2024-06-01 23:59:59"
    assert read_lines(tmp_path / "2024-06-02_flow_serverh:1.json")[0]["time"] == "2024-06-02 00:00:00"


def test_unlisted_rounds_are_not_counted(tmp_path: Path) -> None:
    recorder = DataRateRecorder(str(tmp_path), "h:1")

    recorder.record("pushWeight", 100, 100, now=NOON)
    recorder.record("/state", 100, 100, now=NOON)

    assert recorder.totals() == (0, 0)
    assert recorder.flush(now=NOON + 5) == 0


def test_dot_directory_writes_to_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.chdir(tmp_path)
    recorder = DataRateRecorder(".", "h:2")
    recorder.record("shareSecrets", 7, 8, now=NOON)

    # Execute
    recorder.flush(now=NOON + 1)

    # Assert
    assert recorder.file_path(datetime.fromtimestamp(NOON)) == Path("2024-06-01_flow_serverh:2.json")
    assert [p.name for p in tmp_path.iterdir()] == ["2024-06-01_flow_serverh:2.json"]


def test_empty_directory_disables_files_but_keeps_totals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.chdir(tmp_path)
    recorder = DataRateRecorder("", "h:1")

    # Execute
    recorder.record("updateModel", 300, 40, now=NOON)
    written = recorder.flush(now=NOON + 5, include_current=True)

    # Assert
    assert not recorder.enabled
    assert written == 0
    assert list(tmp_path.iterdir()) == []
    assert recorder.totals() == (300, 40)


def test_iteration_totals_are_taken_and_reset_while_totals_keep_growing(tmp_path: Path) -> None:
    # Prepare
    recorder = DataRateRecorder(str(tmp_path), "h:1")
    recorder.record("startFLJob", 10, 1, now=NOON)
    recorder.record("updateModel", 20, 2, now=NOON)

    # Execute
    first = recorder.take_iteration_totals()
    recorder.record("getModel", 5, 300)
    second = recorder.take_iteration_totals()

    # Assert
    assert first == (30, 3)
    assert second == (5, 300)
    assert recorder.take_iteration_totals() == (0, 0)
    assert recorder.totals() == (35, 303)
