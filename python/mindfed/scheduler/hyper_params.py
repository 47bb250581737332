"""The hyper-parameter overrides of /newInstance, checked and merged exactly as MindSpore's
`HyperParams::MergeHyperJsonConfig` (spec §6.1): same fields, same order of checks, same messages.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mindfed.config.hyper_params import NewInstanceCheck, new_instance_overridable

# Checked in MindSpore's order (from the one table of hyper-parameters); the first bad field is the one reported.
UNSIGNED, POSITIVE = NewInstanceCheck.UNSIGNED, NewInstanceCheck.POSITIVE
OVERRIDABLE: tuple[tuple[str, NewInstanceCheck], ...] = new_instance_overridable()
_UINT64_MAX = 2**64 - 1


class BodyError(ValueError):
    """The request body is not JSON; the message is the full error text."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"invalid literal {name}")  # NaN/Infinity are not JSON (nlohmann rejects them too)


def parse_body(raw: bytes) -> Any:
    """The JSON value of a POST body, or `BodyError` with MindSpore's `ParsePostMessageToJson` texts."""
    if not raw:
        raise BodyError("The post message size is invalid.")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BodyError(f"Illegal JSON format:{exc}") from None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def merge_overrides(current: dict[str, Any], overrides: Any) -> dict[str, Any]:
    """`current` with the valid overrides applied; other keys of `overrides` are ignored, as in MindSpore.

    Args:
        current: the instance's hyper-parameter JSON object.
        overrides: the parsed request body.

    Returns:
        A new dict, keys sorted.

    Raises:
        ValueError: the message MindSpore puts after "New instance failed: ".
    """
    if not isinstance(overrides, dict):
        raise ValueError("Expect hyper param config to be json object")
    merged = dict(current)
    for name, kind in OVERRIDABLE:
        if name not in overrides:
            continue
        value = overrides[name]
        if kind == UNSIGNED:
            if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _UINT64_MAX):
                raise ValueError(f"Field {name} in hyper param config should be unsigned integer number")
        else:
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(f"Field {name} in hyper param config should be float or integer number")
            if value <= 0:
                raise ValueError(f"Field {name} in hyper param config should be larger than 0")
        merged[name] = value
    ratio = merged.get("update_model_ratio", 1.0)
    if not _is_number(ratio) or not 0.0 < float(ratio) <= 1.0:
        raise ValueError("Field update_model_ratio in hyper param config should be in range of (0,1.0]")
    rate = merged.get("client_learning_rate", 1.0)
    if not _is_number(rate) or float(rate) <= 0.0:
        raise ValueError("Field client_learning_rate in hyper param config should be greater than 0")
    return dict(sorted(merged.items()))
