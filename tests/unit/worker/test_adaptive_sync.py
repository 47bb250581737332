"""MindSpore's adaptive sync frequency (worker/adaptive_sync.py): defaults, option checks, and when it shortens."""

from __future__ import annotations

import numpy as np
import pytest

from mindfed.worker.adaptive_sync import DEFAULTS, AdaptiveSync


def test_defaults_are_mindspores() -> None:
    assert DEFAULTS == {"min_consistent_rate": 1.1, "min_consistent_rate_at_round": 0, "ema_alpha": 0.5,
                        "observation_window_size": 5, "frequency_increase_ratio": 2, "unchanged_round": 0}


@pytest.mark.parametrize(("option", "value", "error"), [
    ("ema_alpha", 1.0, ValueError), ("observation_window_size", 0, ValueError),
    ("frequency_increase_ratio", 1.5, TypeError), ("unchanged_round", -1, ValueError), ("bogus", 1, ValueError)])
def test_bad_options_are_refused(option: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=option):
        AdaptiveSync.create(8, **{option: value})


def test_consistent_changes_keep_the_frequency_and_diverging_ones_shorten_it() -> None:
    # Prepare: the same change every window (rate 1, the minimum is found in the first round and never beaten)
    steady = AdaptiveSync.create(8)
    delta = {"w": np.ones(4, np.float32)}
    # Execute
    steady_freqs = [steady.after_window(delta, {"w": np.abs(delta["w"])}) for _ in range(12)]
    # rates falling then flat after a sign flip every window: the minimum stops moving, the window halves
    flipping = AdaptiveSync.create(8)
    freqs = []
    for r in range(12):
        d = {"w": np.full(4, 1.0 if r % 2 else -1.0, np.float32)}
        freqs.append(flipping.after_window(d, {"w": np.abs(d["w"])}))
    # Assert
    assert steady_freqs[:6] == [8] * 6
    assert steady_freqs[-1] == 4  # rate 1.0 < 1.1 at round 0, then 6 rounds without a new minimum
    assert freqs[-1] < 8
    assert all(a >= b for a, b in zip(freqs, freqs[1:], strict=False))
