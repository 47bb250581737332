"""Builds the section dataclasses from a parsed YAML mapping, naming file, line and dotted key on error."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mindfed.config.key_spec import ABSENT, KeySpec, dotted, missing_message, section_of, spec_of
from mindfed.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Where raw values came from, for error messages.

    Attributes:
        source: The file path as given, or "<string>".
        lines: Dotted key -> 1-based line of the key in the file.
        overridden: Dotted keys whose value came from an override, not the file.
        required: Dotted keys the file must give because of other keys (see `yaml_required_keys`).
    """

    source: str
    lines: Mapping[str, int] = field(default_factory=dict)
    overridden: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError for `key`: "<file>: <message> (line N)", or "<file> [override]: ..."."""
        if key in self.overridden:
            return ConfigError(f"{self.source} [override]: {message}")
        line = self.lines.get(key) or self.lines.get(key.rpartition(".")[0])
        suffix = f" (line {line})" if line else ""
        return ConfigError(f"{self.source}: {message}{suffix}")


def build(cls: type[T], raw: object, origin: Origin) -> T:
    """Validates `raw` against the dataclass `cls` and builds it, recursing into sections.

    Unknown keys anywhere in the tree are reported first (a misspelt key is the likeliest cause of a
    "missing" one). Absent keys, null and "" take the dataclass default unless the key is required;
    lists, mappings in leaf keys and unknown keys are errors.

    Args:
        cls: A section dataclass (FLConfig for the whole file).
        raw: The parsed mapping; None means an empty one.
        origin: Where the values came from.

    Returns:
        The built, validated instance.

    Raises:
        ConfigError: Naming the file, dotted key, the value found and what is allowed.
    """
    _reject_unknown_tree(cls, raw, origin, "")
    return _build(cls, raw, origin, "")


def _reject_unknown_tree(cls: type, raw: object, origin: Origin, prefix: str) -> None:
    if not isinstance(raw, Mapping):
        return  # _build reports a non-mapping section with its value
    fields = dataclasses.fields(cls)
    _reject_unknown(raw, [f.name for f in fields], origin, prefix)
    for f in fields:
        sub = section_of(f)
        if sub is not None:
            _reject_unknown_tree(sub, raw.get(f.name), origin, dotted(prefix, f.name))


def _build(cls: type[T], raw: object, origin: Origin, prefix: str) -> T:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        where = prefix or "top level"
        raise origin.error(prefix, f"{where}: {raw!r} is not a mapping; allowed: a mapping of keys")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = dotted(prefix, f.name)
        sub = section_of(f)
        if sub is not None:
            kwargs[f.name] = _build(sub, raw.get(f.name), origin, key)
            continue
        spec = spec_of(f)
        assert spec is not None, f"{cls.__name__}.{f.name} was declared without a *_key helper"
        value = raw.get(f.name, ABSENT)
        if _is_missing(value, spec):
            if spec.required or key in origin.required:
                raise origin.error(key, missing_message(key, value, _allowed(spec, key, origin)))
            continue
        try:
            kwargs[f.name] = spec.check(key, value)
        except ConfigError as e:
            raise origin.error(key, str(e)) from None
    try:
        return cls(**kwargs)
    except ConfigError as e:
        # Cross-key checks of __post_init__ name their own key first: "<key>: ...".
        raise origin.error(str(e).partition(":")[0], str(e)) from None


def known_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted leaf key of a section dataclass, in declaration order."""
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        sub = section_of(f)
        key = dotted(prefix, f.name)
        keys.extend(known_keys(sub, key) if sub is not None else [key])
    return keys


def did_you_mean(name: str, candidates: list[str]) -> str:
    """The "; did you mean 'x'?" tail for the closest candidate, or "" when none is close."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _reject_unknown(raw: Mapping[Any, Any], names: list[str], origin: Origin, prefix: str) -> None:
    for name in raw:
        if name in names:
            continue
        key = dotted(prefix, str(name))
        where = f"section '{prefix}'" if prefix else "the top level"
        raise origin.error(
            key,
            f"{key}: unknown key (value {raw[name]!r}); allowed: one of the keys of {where}: "
            f"{', '.join(names)}{did_you_mean(key, [dotted(prefix, n) for n in names])}",
        )


def _is_missing(value: object, spec: KeySpec) -> bool:
    return value is ABSENT or value is None or (value == "" and not spec.allow_empty)


def _allowed(spec: KeySpec, key: str, origin: Origin) -> str:
    if key in origin.required and spec.kind is str:
        return "a non-empty string"
    return spec.allowed()
