"""Reads a YAML file (plus dotted-key overrides) into an FLConfig, and writes one back out.

`load`/`loads` parse with `yaml.safe_load`, merge the overrides, then build the dataclasses; every
failure is a ConfigError naming the file (and line where known), the dotted key, the value and what
is allowed. `to_dict` and `hyper_params` go the other way: the nested YAML form and the flat JSON of
hyper parameters the first server publishes to Redis (spec §2.10).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from mindfed.config.builder import Origin, build, did_you_mean, known_keys
from mindfed.config.hyper_params import published
from mindfed.config.key_spec import section_of
from mindfed.config.schema import FLConfig, yaml_required_keys
from mindfed.errors import ConfigError

OVERRIDE_SOURCE = "<config>"


def load(path: str | os.PathLike[str], overrides: Mapping[str, object] | None = None) -> FLConfig:
    """Loads and validates a YAML config file.

    Args:
        path: The YAML file.
        overrides: Dotted keys to values ({"round.start_fl_job_threshold": 4}), applied over the file
            and validated like YAML values.

    Returns:
        The validated config.

    Raises:
        ConfigError: The file is missing or unreadable, is not valid YAML, or holds an invalid config.
    """
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file; allowed: a path to a YAML config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{source}: cannot read the file ({e})") from e
    return loads(text, source, overrides)


def loads(text: str, source: str = "<string>", overrides: Mapping[str, object] | None = None) -> FLConfig:
    """Parses and validates YAML text.

    Args:
        text: The YAML document.
        source: A name for messages (normally the file path).
        overrides: Dotted keys to values, applied over the text (see `load`).

    Returns:
        The validated config.

    Raises:
        ConfigError: Bad YAML syntax, a top level that is not a mapping, or an invalid config.
    """
    try:
        root_node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None
    lines: dict[str, int] = {}
    if root_node is not None:
        _record_lines(root_node, "", lines, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the top level is {type(raw).__name__} {raw!r} (line 1); allowed: a mapping of keys"
        )
    return _build(raw, source, lines, overrides)


def with_overrides(cfg: FLConfig, overrides: Mapping[str, object]) -> FLConfig:
    """Returns a copy of `cfg` with dotted keys replaced, validated like YAML values.

    Args:
        cfg: A valid config.
        overrides: Dotted keys to values.

    Returns:
        The new config.

    Raises:
        ConfigError: An unknown key or an invalid value.
    """
    return _build(to_dict(cfg), OVERRIDE_SOURCE, {}, overrides)


def parse_override(text: str) -> tuple[str, object]:
    """Parses a command-line override "dotted.key=value"; the value is read as a YAML scalar.

    Args:
        text: e.g. "round.start_fl_job_threshold=4" or "encrypt.encrypt_train_type=PW_ENCRYPT".

    Returns:
        (dotted key, value), e.g. ("round.start_fl_job_threshold", 4).

    Raises:
        ConfigError: No "=" or an unparsable value.
    """
    key, sep, value_text = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: allowed: 'dotted.key=value'")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: the value is not a YAML scalar ({e})") from None
    return key.strip(), value


def to_dict(cfg: Any) -> dict[str, Any]:
    """The nested, YAML-ready form of a config or section: every key, defaults included, enums as str.

    Args:
        cfg: FLConfig or any section dataclass.

    Returns:
        A dict in declaration order that `loads(yaml.safe_dump(...))` reads back to an equal config.
    """
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if section_of(f) is not None:
            out[f.name] = to_dict(value)
        elif isinstance(value, StrEnum):
            out[f.name] = value.value  # plain str: yaml.safe_dump rejects str subclasses
        else:
            out[f.name] = value
    return out


def hyper_params(cfg: FLConfig) -> dict[str, Any]:
    """The flat hyper-parameter JSON of spec §2.10 (exactly those keys, sorted), for Redis.

    The first server writes it with SET EX NX; later servers adopt it, except that enable_ssl and
    pki_verify must match their own YAML. The keys are declared in `config.hyper_params.HYPER_PARAMS`.

    Args:
        cfg: The effective config.

    Returns:
        Key -> JSON-ready value (enums as their YAML literals).
    """
    return published(cfg)


def _build(raw: dict[str, Any], source: str, lines: dict[str, int], overrides: Mapping[str, object] | None) -> FLConfig:
    raw = copy.deepcopy(raw)
    overridden = _apply_overrides(raw, overrides or {}, source)
    origin = Origin(source=source, lines=lines, overridden=overridden, required=yaml_required_keys(raw))
    return build(FLConfig, raw, origin)


def _apply_overrides(raw: dict[str, Any], overrides: Mapping[str, object], source: str) -> frozenset[str]:
    valid = known_keys(FLConfig)
    for key, value in overrides.items():
        if key not in valid:
            raise ConfigError(
                f"{source} [override]: {key}: unknown key (value {value!r}); allowed: a dotted key "
                f"such as round.start_fl_job_threshold{did_you_mean(key, valid)}"
            )
        *parents, leaf = key.split(".")
        node = raw
        for depth, name in enumerate(parents):
            child = node.get(name)
            if child is None:
                child = node[name] = {}
            elif not isinstance(child, dict):
                section_key = ".".join(parents[: depth + 1])
                raise ConfigError(
                    f"{source}: {section_key}: {child!r} is not a mapping, so override {key} cannot "
                    "apply; allowed: a mapping of keys"
                )
            node = child
        node[leaf] = value
    return frozenset(overrides)


def _record_lines(node: yaml.Node, prefix: str, lines: dict[str, int], source: str) -> None:
    """Maps each dotted key to its line, and rejects duplicate keys (PyYAML keeps the last silently)."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        name = str(key_node.value)
        key = f"{prefix}.{name}" if prefix else name
        line = key_node.start_mark.line + 1
        if key in lines:
            raise ConfigError(
                f"{source}: {key}: duplicate key at line {line} (first at line {lines[key]}); allowed: each key once"
            )
        lines[key] = line
        _record_lines(value_node, key, lines, source)
