"""Addresses at the CLI's edges: a bad --http_server_address is a config error, not a traceback."""

from __future__ import annotations

import pytest

from mindfed.cli.demo import consecutive_address
from mindfed.errors import ConfigError


def test_the_demo_refuses_a_bad_server_address_as_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^'localhost' is not an address; allowed: "):
        consecutive_address("localhost", 2)
