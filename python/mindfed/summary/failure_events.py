"""The ``failure_event_file``: a line each time iterations fail ``continuous_failure_times`` in a row."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from mindfed.summary.timestamps import format_millis


class FailureEventLog:
    """Counts consecutive failed iterations and logs an event when the count reaches the limit.

    Every server counts its own failures, but in MindSpore only the summary-lock holder
    writes (and then resets); the others pass ``may_write=False`` and keep counting.
    """

    def __init__(self, path: str | os.PathLike[str], continuous_failure_times: int, tcp_address: str) -> None:
        """Starts counting from zero failures.

        Args:
            path: The ``summary.failure_event_file`` path; parent folders are made on first write.
            continuous_failure_times: Failures in a row that make one event (``>= 1``).
            tcp_address: This server's ``host:port``, written into each event.

        Raises:
            ValueError: ``continuous_failure_times`` is below 1.
        """
        if continuous_failure_times < 1:
            raise ValueError(f"continuous_failure_times must be >= 1, got {continuous_failure_times}")
        self.path = Path(path)
        self._limit = continuous_failure_times
        self._tcp_address = tcp_address
        self._failures = 0

    @property
    def consecutive_failures(self) -> int:
        """Failed iterations in a row since the last success or event."""
        return self._failures

    def record(self, iteration_ok: bool, now: datetime | None = None, *, may_write: bool = True) -> bool:
        """Counts one finished iteration and writes an event line when the limit is reached.

        A success resets the count; so does writing an event, so a long outage logs one
        line per ``continuous_failure_times`` failures.

        Args:
            iteration_ok: Whether the iteration succeeded.
            now: The event time (local); the current time when None.
            may_write: Whether this server holds the summary lock this iteration.

        Returns:
            True when an event line was written.

        Raises:
            OSError: The event file cannot be written.
        """
        if iteration_ok:
            self._failures = 0
            return False
        self._failures += 1
        if self._failures < self._limit or not may_write:
            return False
        moment = now if now is not None else datetime.now()
        line = (
            f"nodeRole:SERVER,{self._tcp_address},currentTime:{format_millis(moment)},"
            f"event:Iteration failed {self._failures} times continuously;\n"
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self._failures = 0
        return True
