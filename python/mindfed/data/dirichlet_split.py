"""Non-IID partition of a labelled set across devices by Dirichlet label skew."""

from __future__ import annotations

import numpy as np


def _skewed_assignment(labels: np.ndarray, num_devices: int, alpha: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Device index per sample: each class is shared out by proportions ~ Dir(alpha)."""
    owner = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        shares = rng.dirichlet(np.full(num_devices, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(np.int64)
        for device, part in enumerate(np.split(members, cuts)):
            owner[part] = device
    return owner


def _top_up(owner: np.ndarray, num_devices: int, min_samples: int,
            rng: np.random.Generator) -> None:
    """Moves random samples from the largest device to each device short of `min_samples`.

    Taking from the largest keeps the skew of everyone else intact, and it always ends:
    the caller checked num_devices * min_samples <= len(owner).
    """
    counts = np.bincount(owner, minlength=num_devices)
    for device in np.flatnonzero(counts < min_samples):
        while counts[device] < min_samples:
            donor = int(np.argmax(counts))
            need = min(min_samples - counts[device], counts[donor] - min_samples)
            taken = rng.choice(np.flatnonzero(owner == donor), size=need, replace=False)
            owner[taken] = device
            counts[donor] -= need
            counts[device] += need


def dirichlet_split(labels: np.ndarray, num_devices: int, alpha: float, seed: int,
                    min_samples: int = 10) -> list[np.ndarray]:
    """Splits sample indices across devices with Dirichlet(alpha) label skew.

    Smaller `alpha` means more skew (alpha -> 0: one class per device; alpha -> inf: IID).
    Every sample goes to exactly one device, and every device gets >= `min_samples`.

    Args:
        labels: int class label per sample, shape (N,).
        num_devices: number of parts, >= 1.
        alpha: Dirichlet concentration, > 0.
        seed: seed of the numpy Generator; the same inputs and seed give the same split.
        min_samples: least samples per device, >= 0.

    Returns:
        One sorted int64 index array per device; together a partition of range(N).

    Raises:
        ValueError: bad arguments, or N < num_devices * min_samples.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if num_devices < 1:
        raise ValueError(f"num_devices must be >= 1, got {num_devices}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if min_samples < 0 or num_devices * min_samples > len(labels):
        raise ValueError(f"cannot give {num_devices} devices {min_samples} samples each "
                         f"from {len(labels)} samples")
    rng = np.random.default_rng(seed)
    owner = _skewed_assignment(labels, num_devices, alpha, rng)
    _top_up(owner, num_devices, min_samples, rng)
    return [np.flatnonzero(owner == device) for device in range(num_devices)]
