"""What one YAML key may hold (type, range, choices) and the error messages when it does not.

Every section dataclass declares its keys with the `*_key` helpers below; the spec lives in the field's
metadata so that the loader (which knows the file and line) and `__post_init__` (which guards direct
construction) apply one and the same rule. Messages name the dotted key, the value found and what is
allowed, then repeat MindSpore's own phrase so MindSpore-style substring checks still match.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from mindfed.errors import ConfigError

UINT32_MAX = 2**32 - 1

_SPEC = "mindfed.key_spec"
_SECTION = "mindfed.section"


class _Absent:
    """Marker for "this spec has no unset value"; a class so mypy can narrow on it."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """The rule for one leaf key.

    Attributes:
        kind: `int`, `float`, `str`, `bool` or a StrEnum class.
        lo: Lower bound (numbers), or None.
        hi: Upper bound (numbers), or None.
        lo_open: True when `lo` itself is not allowed.
        hi_open: True when `hi` itself is not allowed.
        required: The YAML must give the key; absent, null and "" are reported as missing.
        allow_empty: "" is a meaningful value rather than "missing" (str keys only).
        unset: A value that means "not given" and skips the range check (MindSpore's sentinel defaults,
            e.g. `aggregation.iid_rate: 0.0`).
    """

    kind: type
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    required: bool = False
    allow_empty: bool = False
    unset: object = ABSENT

    def allowed(self) -> str:
        """Says in words what the key accepts, e.g. "a float in (0, 1]"."""
        if issubclass(self.kind, StrEnum):
            return "one of " + ", ".join(m.value for m in self.kind)
        if self.kind is bool:
            return "a boolean (true or false)"
        if self.kind is str:
            return "a string" if self.allow_empty or not self.required else "a non-empty string"
        noun = "an int" if self.kind is int else "a float"
        text = noun + self._range_text()
        if self.unset is not ABSENT:
            text += f" (or {_fmt(self.unset)} for unset)"
        return text

    def _range_text(self) -> str:
        if self.lo is not None and self.hi is not None:
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            return f" in {left}{_fmt(self.lo)}, {_fmt(self.hi)}{right}"
        if self.lo is not None:
            return f" {'>' if self.lo_open else '>='} {_fmt(self.lo)}"
        if self.hi is not None:
            return f" {'<' if self.hi_open else '<='} {_fmt(self.hi)}"
        return ""

    def check(self, key: str, value: object) -> object:
        """Validates one value and returns it in its field type (int -> float, str -> enum).

        Args:
            key: The dotted key, for the message.
            value: The value as YAML (or a caller) gave it.

        Returns:
            The value converted to the field's type.

        Raises:
            ConfigError: Wrong type, out of range, not one of the choices, or missing. The message has no
                file prefix; the loader adds it.
        """
        if self.required and (value is None or (value == "" and not self.allow_empty)):
            raise ConfigError(missing_message(key, value, self.allowed()))
        if isinstance(value, list | tuple | set | Mapping):
            noun = "a mapping" if isinstance(value, Mapping) else "a list"
            expected = "str" if issubclass(self.kind, StrEnum) else self.kind.__name__
            raise ConfigError(f"{key}: {value!r} is {noun}; allowed: {self.allowed()}. "
                              + _mindspore_type_phrase(key, expected, value))
        if issubclass(self.kind, StrEnum):
            return self._check_choice(key, value)
        typed = self._check_type(key, value)
        if isinstance(typed, int | float) and not isinstance(typed, bool) and typed != self.unset:
            self._check_range(key, typed)
        return typed

    def _check_choice(self, key: str, value: object) -> StrEnum:
        kind = cast(type[StrEnum], self.kind)  # callers check issubclass(self.kind, StrEnum) first
        if not isinstance(value, str):
            raise ConfigError(_type_message(key, value, "str", self.allowed()))
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(m.value for m in kind)
            raise ConfigError(
                f"{key}: {value!r} is not an allowed value; allowed: {self.allowed()}. "
                f"The value of parameter '{key}' can be only one of [{choices}]"
            ) from None

    def _check_type(self, key: str, value: object) -> object:
        if self.kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{key}: {value!r} is not a finite number; allowed: {self.allowed()}")
            return float(value)
        # bool is an int subclass in Python; YAML `true` must not pass for a count.
        if type(value) is self.kind:
            return value
        hint = ""
        if self.kind is float and isinstance(value, str) and _looks_numeric(value):
            hint = " (YAML 1.1 reads a float without a dot, like 1e-3, as a string; write 1.0e-3)"
        name = self.kind.__name__
        raise ConfigError(_type_message(key, value, name, self.allowed()) + hint)

    def _check_range(self, key: str, value: float) -> None:
        too_low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        too_high = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        if too_low or too_high:
            raise ConfigError(
                f"{key}: {value!r} is out of range; allowed: {self.allowed()}. "
                f"Failed to check value of parameter '{key}': {value!r}"
            )


def missing_message(key: str, value: object, allowed: str) -> str:
    """The message for a required key that is absent (`value` ABSENT), null or ""."""
    if value is ABSENT:
        found = "no value given"
    elif value is None:
        found = "null given"
    else:
        found = f"{value!r} is empty, which counts as missing"
    return f"{key}: {found}; allowed: {allowed}. The parameter '{key}' is missing"


def _type_message(key: str, value: object, expected: str, allowed: str) -> str:
    return f"{key}: {value!r} has type {type(value).__name__}; allowed: {allowed}. " + _mindspore_type_phrase(
        key, expected, value)


def _mindspore_type_phrase(key: str, expected: str, value: object) -> str:
    """MindSpore's own text for a value of the wrong type, which scripts and tests written for it look for."""
    return f"The parameter '{key}' is expected to be type {expected}, actually {type(value).__name__}"


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fmt(bound: object) -> str:
    if isinstance(bound, float) and bound.is_integer() and abs(bound) < 1e15:
        return str(int(bound))
    return repr(bound)


def _key(default: object, spec: KeySpec) -> Any:
    if default is ABSENT:
        return dataclasses.field(metadata={_SPEC: spec})
    return dataclasses.field(default=default, metadata={_SPEC: spec})


def int_key(
    default: object = ABSENT,
    *,
    lo: int | None = None,
    hi: int | None = UINT32_MAX,
    required: bool = False,
    unset: object = ABSENT,
) -> Any:
    """A dataclass field holding an int key; floats, bools and strings are rejected."""
    return _key(default, KeySpec(kind=int, lo=lo, hi=hi, required=required, unset=unset))


def float_key(
    default: object = ABSENT,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    required: bool = False,
    unset: object = ABSENT,
) -> Any:
    """A dataclass field holding a float key; ints are accepted and converted, as in MindSpore."""
    spec = KeySpec(kind=float, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, required=required, unset=unset)
    return _key(default, spec)


def str_key(default: object = ABSENT, *, required: bool = False, allow_empty: bool = False) -> Any:
    """A dataclass field holding a string key."""
    return _key(default, KeySpec(kind=str, required=required, allow_empty=allow_empty))


def bool_key(default: object = ABSENT, *, required: bool = False) -> Any:
    """A dataclass field holding a boolean key (YAML true/false only)."""
    return _key(default, KeySpec(kind=bool, required=required))


def enum_key(kind: type[StrEnum], default: object = ABSENT, *, required: bool = False) -> Any:
    """A dataclass field holding one of a StrEnum's YAML literals."""
    return _key(default, KeySpec(kind=kind, required=required))


def section(kind: type, *, required: bool = False) -> Any:
    """A dataclass field holding a nested section; optional sections default to the section's defaults."""
    if required:
        return dataclasses.field(metadata={_SECTION: kind})
    return dataclasses.field(default_factory=kind, metadata={_SECTION: kind})


def spec_of(f: dataclasses.Field[Any]) -> KeySpec | None:
    """The KeySpec of a leaf field, or None for a section field."""
    spec = f.metadata.get(_SPEC)
    return spec if isinstance(spec, KeySpec) else None


def section_of(f: dataclasses.Field[Any]) -> type | None:
    """The section class of a nested-section field, or None for a leaf."""
    kind = f.metadata.get(_SECTION)
    return kind if isinstance(kind, type) else None


def validate_fields(obj: Any, prefix: str) -> None:
    """Checks every leaf field of a section in place; call from `__post_init__`.

    Converts int -> float and str -> enum on the frozen instance, so a section built by hand holds the
    same types as one loaded from YAML.

    Args:
        obj: The section dataclass instance.
        prefix: Its dotted path ("round", "encrypt.pw_encrypt"; "" for the top level).

    Raises:
        ConfigError: The first invalid field.
    """
    for f in dataclasses.fields(obj):
        spec = spec_of(f)
        if spec is None:
            continue
        value = getattr(obj, f.name)
        typed = spec.check(dotted(prefix, f.name), value)
        if typed is not value:
            object.__setattr__(obj, f.name, typed)  # frozen: the only sanctioned write, at construction


def dotted(prefix: str, name: str) -> str:
    """Joins a section path and a key name: ("round", "x") -> "round.x", ("", "x") -> "x"."""
    return f"{prefix}.{name}" if prefix else name
