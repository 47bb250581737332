"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.job_harness import Jobs


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    """Job processes started through the API (FLServerJob, FlSchedulerJob); killed by PID if a test leaves any."""
    started = Jobs(tmp_path)
    yield started
    started.stop_all()
