"""_core.agg.all_finite against numpy's isfinite, at the edges the kernel cares about."""

from __future__ import annotations

import numpy as np
import pytest

from mindfed import _core


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 4095, 4096, 4097, 66_404])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_anywhere_is_found(n: int, bad: float) -> None:
    values = np.random.default_rng(n).standard_normal(n).astype(np.float32) * np.float32(1e37)  # large, still finite
    assert _core.agg.all_finite(values)
    for at in {0, n // 2, n - 1} if n else set():
        spoiled = values.copy()
        spoiled[at] = bad
        assert not _core.agg.all_finite(spoiled), at


def test_unaligned_read_only_views_of_a_body_are_accepted() -> None:
    body = bytearray(1 + 4 * 100)
    view = np.frombuffer(bytes(body), dtype=np.float32, count=100, offset=1)  # odd address, read-only
    assert _core.agg.all_finite(view)
    body[1 + 4 * 57: 1 + 4 * 58] = np.float32(np.nan).tobytes()
    assert not _core.agg.all_finite(np.frombuffer(bytes(body), dtype=np.float32, count=100, offset=1))


def test_wrong_dtype_is_refused() -> None:
    with pytest.raises(TypeError):
        _core.agg.all_finite(np.zeros(4, np.float64))
