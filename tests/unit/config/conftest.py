"""Fixtures for the config tests: the seed sample and variants of it written to real files."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
SEED_YAML = REPO / "yamls" / "lenet.yaml"
DEMO_YAML = REPO / "python" / "mindfed" / "cli" / "demo.yaml"

LenetFile = Callable[..., Path]


@pytest.fixture
def seed_yaml() -> Path:
    """yamls/lenet.yaml: the seed document's sample config, verbatim."""
    return SEED_YAML


@pytest.fixture
def demo_yaml() -> Path:
    """The built-in demo config of `mindfed demo` (embedded Redis)."""
    return DEMO_YAML


@pytest.fixture
def seed_raw() -> dict[str, Any]:
    """The seed sample (yamls/lenet.yaml) as a plain nested dict."""
    raw = yaml.safe_load(SEED_YAML.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


@pytest.fixture
def lenet_file(tmp_path: Path, seed_raw: dict[str, Any]) -> LenetFile:
    """Writes `lenet.yaml` = the seed with dotted keys set (`changes`) or deleted (`removed`)."""

    def write(changes: Mapping[str, object] | None = None, removed: Iterable[str] = ()) -> Path:
        raw = copy.deepcopy(seed_raw)
        for key, value in (changes or {}).items():
            *parents, leaf = key.split(".")
            node = raw
            for name in parents:
                node = node.setdefault(name, {})
            node[leaf] = value
        for key in removed:
            *parents, leaf = key.split(".")
            node = raw
            for name in parents:
                node = node[name]
            del node[leaf]
        path = tmp_path / "lenet.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return path

    return write
