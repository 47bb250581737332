"""Shared fixtures: a real redis-server for the whole run (started by our own EmbeddedRedis), real servers per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from mindfed.cache.embedded import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_address() -> Iterator[str]:
    """ip:port of a real redis-server private to this test run."""
    with EmbeddedRedis() as redis:
        yield redis.address


@pytest.fixture
def fl_name() -> str:
    """A job name of its own per test: one shared Redis, separate keys."""
    return f"t-{uuid.uuid4().hex[:8]}"
