"""Dirichlet label-skew partition of sample indices across devices."""

from __future__ import annotations

import numpy as np
import pytest

from mindfed.data.dirichlet_split import dirichlet_split


def _labels(n: int = 500, classes: int = 10) -> np.ndarray:
    return np.random.default_rng(42).integers(0, classes, n)


@pytest.mark.parametrize("alpha", [0.05, 0.5, 100.0])
def test_every_sample_goes_to_exactly_one_device(alpha: float) -> None:
    # Execute
    parts = dirichlet_split(_labels(), num_devices=8, alpha=alpha, seed=3, min_samples=10)

    # Assert
    assert len(parts) == 8
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(500))
    assert min(len(p) for p in parts) >= 10


def test_same_seed_same_split_other_seed_other_split() -> None:
    # Execute
    first = dirichlet_split(_labels(), 8, 0.5, seed=7)
    again = dirichlet_split(_labels(), 8, 0.5, seed=7)
    other = dirichlet_split(_labels(), 8, 0.5, seed=8)

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_small_alpha_skews_labels_more_than_large_alpha() -> None:
    # Prepare
    labels = _labels(2000)

    def mean_top_class_share(alpha: float) -> float:
        parts = dirichlet_split(labels, 8, alpha, seed=0, min_samples=0)
        return float(np.mean([np.bincount(labels[p]).max() / len(p) for p in parts if len(p)]))

    # Execute / Assert
    assert mean_top_class_share(0.1) > 0.5 > mean_top_class_share(100.0)


def test_impossible_minimum_and_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="cannot give 8 devices 100 samples"):
        dirichlet_split(_labels(), 8, 0.5, seed=0, min_samples=100)
    with pytest.raises(ValueError, match="alpha"):
        dirichlet_split(_labels(), 8, 0.0, seed=0)
    with pytest.raises(ValueError, match="num_devices"):
        dirichlet_split(_labels(), 0, 0.5, seed=0)
