"""Adopting the cluster's hyper-parameters (spec §2.10): the first server publishes its YAML's values to Redis, and
every later server, and every server after a `/newInstance`, runs with what Redis holds, whatever its own YAML says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mindfed.config import FLConfig, with_overrides
from mindfed.config.hyper_params import adoptable, must_match
from mindfed.errors import ConfigError

# hyperParams JSON key → dotted YAML key, and the keys that must be equal on every server (a mismatch is a start-up
# error, not something to adopt): both from the one table.
DOTTED: dict[str, str] = adoptable()
MUST_MATCH = must_match()
SYNC_FAILED = "Sync hyper params with distributed cache failed"


def adopt(config: FLConfig, cached: Mapping[str, Any], ours: Mapping[str, Any]) -> FLConfig:
    """`config` with the cluster's values (`cached`) in place of this YAML's (`ours`).

    Raises:
        ConfigError: enable_ssl or pki_verify differ from the cluster's ("Sync hyper params with distributed cache
            failed", MindSpore's text), or the cached values are invalid.
    """
    for key in MUST_MATCH:
        if key in cached and cached[key] != ours.get(key):
            raise ConfigError(f"{SYNC_FAILED}: {key} is {ours.get(key)!r} here but {cached[key]!r} in the cluster")
    overrides = {DOTTED[k]: v for k, v in cached.items() if k in DOTTED and v != ours.get(k)}
    return with_overrides(config, overrides) if overrides else config
