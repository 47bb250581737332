from datetime import datetime
from pathlib import Path

import pytest

from mindfed.summary.failure_events import FailureEventLog

NOW = datetime(2024, 2, 3, 4, 5, 6, 789_000)


def test_event_written_when_failures_reach_limit_then_count_resets(tmp_path: Path) -> None:
    # Prepare
    log = FailureEventLog(tmp_path / "events" / "event.txt", continuous_failure_times=3, tcp_address="10.0.0.1:6666")

    # Execute
    written = [log.record(False, NOW) for _ in range(7)]

    # Assert
    assert written == [False, False, True, False, False, True, False]
    line = (
        "nodeRole:SERVER,10.0.0.1:6666,currentTime:2024-02-03 04:05:06.789,"
        "event:Iteration failed 3 times continuously;\n"
    )
    assert log.path.read_text(encoding="utf-8") == line * 2
    assert log.consecutive_failures == 1


def test_success_resets_the_count(tmp_path: Path) -> None:
    # Prepare
    log = FailureEventLog(tmp_path / "event.txt", continuous_failure_times=2, tcp_address="h:1")

    # Execute
    results = [log.record(ok, NOW) for ok in (False, True, False, True, False, False)]

    # Assert
    assert results == [False, False, False, False, False, True]
    assert log.path.read_text(encoding="utf-8").count("\n") == 1


def test_limit_one_writes_every_failure(tmp_path: Path) -> None:
    log = FailureEventLog(tmp_path / "event.txt", continuous_failure_times=1, tcp_address="h:1")

    assert log.record(False, NOW)
    assert log.record(False, NOW)
    assert "Iteration failed 1 times continuously;" in log.path.read_text(encoding="utf-8")


def test_server_without_lock_keeps_counting_without_writing(tmp_path: Path) -> None:
    # Prepare
    log = FailureEventLog(tmp_path / "event.txt", continuous_failure_times=2, tcp_address="h:1")

    # Execute
    first = [log.record(False, NOW, may_write=False) for _ in range(3)]
    then = log.record(False, NOW)

    # Assert
    assert first == [False, False, False]
    assert then
    assert "Iteration failed 4 times continuously;" in log.path.read_text(encoding="utf-8")


def test_limit_below_one_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="continuous_failure_times"):
        FailureEventLog(tmp_path / "e.txt", continuous_failure_times=0, tcp_address="h:1")
