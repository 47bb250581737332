"""Unsupervised evaluation: how well clients' classifier outputs cluster (spec §12).

Each client uploads one vector; its cluster label is the vector's argmax. The score is
computed over the latest ``cluster_client_num`` clients, so no labelled data is needed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import numpy.typing as npt

# Pairwise distances are built in row blocks of this many samples, bounding the
# temporary to block * n floats (8 MiB at n = 4096) instead of n * n.
_ROW_BLOCK = 256


class UnsupervisedEvalType(StrEnum):
    """``unsupervised.eval_type`` values; the literals are MindSpore's."""

    NOT_EVAL = "NOT_EVAL"
    SILHOUETTE_SCORE = "SILHOUETTE_SCORE"
    CALINSKI_HARABASZ_SCORE = "CALINSKI_HARABASZ_SCORE"
    DAVIES_BOULDIN_SCORE = "DAVIES_BOULDIN_SCORE"


def _labels(vectors: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.intp], int]:
    # MindSpore's Davies-Bouldin indexes its centroid table by raw argmax, so labels
    # {0, 2} leave a phantom empty cluster 1 in the mean. Relabelling to 0..k-1 fixes
    # that and changes nothing for the other two scores.
    _, labels = np.unique(vectors.argmax(axis=1), return_inverse=True)
    return labels.reshape(-1), int(labels.max()) + 1


def _cluster_distance_sums(
    points: npt.NDArray[np.float64], labels: npt.NDArray[np.intp], k: int
) -> npt.NDArray[np.float64]:
    """Row i, column c: the sum of Euclidean distances from point i to the points of cluster c."""
    n = int(points.shape[0])
    one_hot = np.zeros((n, k))
    one_hot[np.arange(n), labels] = 1.0
    squared_norms = np.einsum("ij,ij->i", points, points)
    sums = np.empty((n, k))
    for start in range(0, n, _ROW_BLOCK):
        block = points[start : start + _ROW_BLOCK]
        squared = squared_norms[start : start + _ROW_BLOCK, None] - 2.0 * block @ points.T + squared_norms[None, :]
        # The expansion rounds: a zero distance can come out slightly off zero (even
        # negative), and a point's distance to itself must be exactly 0.
        np.maximum(squared, 0.0, out=squared)
        own = np.arange(block.shape[0])
        squared[own, start + own] = 0.0
        sums[start : start + _ROW_BLOCK] = np.sqrt(squared) @ one_hot
    return sums


def silhouette(points: npt.NDArray[np.float64], labels: npt.NDArray[np.intp], k: int) -> float:
    """Mean silhouette coefficient; 0.0 unless ``2 <= k <= n - 1``.

    A point whose mean intra-cluster distance is 0 (a singleton, or a cluster of
    identical points) scores 0, as in MindSpore.
    """
    n = int(points.shape[0])
    if not 2 <= k <= n - 1:
        return 0.0
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    sums = _cluster_distance_sums(points, labels, k)
    rows = np.arange(n)
    own_size = sizes[labels]
    intra = np.divide(sums[rows, labels], own_size - 1, out=np.zeros(n), where=own_size > 1)
    means_to_others = sums / sizes[None, :]
    means_to_others[rows, labels] = np.inf
    nearest = means_to_others.min(axis=1)
    denominator = np.maximum(intra, nearest)
    coefficients = np.divide(nearest - intra, denominator, out=np.zeros(n), where=intra > 0)
    return float(coefficients.mean())


def _centroids(points: npt.NDArray[np.float64], labels: npt.NDArray[np.intp], k: int) -> npt.NDArray[np.float64]:
    sums = np.zeros((k, points.shape[1]))
    np.add.at(sums, labels, points)
    return sums / np.bincount(labels, minlength=k)[:, None]


def calinski_harabasz(points: npt.NDArray[np.float64], labels: npt.NDArray[np.intp], k: int) -> float:
    """Between- over within-cluster dispersion times ``(n - k) / (k - 1)``.

    Returns 1.0 when the within dispersion is 0 (as MindSpore and scikit-learn do) and
    0.0 for a single cluster, where the ratio is undefined.
    """
    if k < 2:
        return 0.0
    n = int(points.shape[0])
    centroids = _centroids(points, labels, k)
    sizes = np.bincount(labels, minlength=k)
    between = float(np.sum(sizes * np.sum((centroids - points.mean(axis=0)) ** 2, axis=1)))
    within = float(np.sum((points - centroids[labels]) ** 2))
    if within == 0.0:
        return 1.0
    return between * (n - k) / (within * (k - 1))


def davies_bouldin(points: npt.NDArray[np.float64], labels: npt.NDArray[np.intp], k: int) -> float:
    """Mean over clusters of the worst ``(s_i + s_j) / d(c_i, c_j)``; lower is better.

    ``s_i`` is the mean distance of cluster i's points to its centroid. Coinciding
    centroids are skipped (infinite distance) and a single cluster scores 0.0.
    """
    if k < 2:
        return 0.0
    centroids = _centroids(points, labels, k)
    spread = np.bincount(labels, weights=np.linalg.norm(points - centroids[labels], axis=1), minlength=k) / np.bincount(
        labels, minlength=k
    )
    gaps = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=2)
    if np.allclose(spread, 0.0) or np.allclose(gaps, 0.0):
        return 0.0
    gaps[gaps == 0.0] = np.inf
    ratios = (spread[:, None] + spread[None, :]) / gaps
    return float(ratios.max(axis=1).mean())


_SCORERS = {
    UnsupervisedEvalType.SILHOUETTE_SCORE: silhouette,
    UnsupervisedEvalType.CALINSKI_HARABASZ_SCORE: calinski_harabasz,
    UnsupervisedEvalType.DAVIES_BOULDIN_SCORE: davies_bouldin,
}


def score(vectors: npt.ArrayLike, eval_type: str) -> float:
    """Scores how well the vectors cluster by their argmax labels.

    Args:
        vectors: float array, shape ``(n, k)``: one classifier output per client.
        eval_type: An ``unsupervised.eval_type`` literal.

    Returns:
        The score; 0.0 for ``NOT_EVAL`` or no vectors.

    Raises:
        ValueError: ``eval_type`` is unknown, or ``vectors`` is not a 2-D array of finite
            numbers with at least one column.
    """
    kind = UnsupervisedEvalType(eval_type)
    if kind is UnsupervisedEvalType.NOT_EVAL:
        return 0.0
    points = np.asarray(vectors, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] == 0:
        raise ValueError(f"unsupervised eval needs an (n, k) array with k >= 1, got shape {points.shape}")
    if points.shape[0] == 0:
        return 0.0
    if not np.isfinite(points).all():
        raise ValueError("unsupervised eval vectors contain NaN or infinity")
    labels, k = _labels(points)
    return float(_SCORERS[kind](points, labels, k))


class UnsupervisedWindow:
    """The latest ``cluster_client_num`` client vectors, newest first.

    An in-memory mirror of MindSpore's Redis list (``LPUSH`` per update, ``LTRIM 0..N-1``
    at reset); the server keeps the real one in the cache.
    """

    def __init__(self, cluster_client_num: int) -> None:
        """Makes an empty window.

        Args:
            cluster_client_num: Vectors needed for a score (``>= 1``).

        Raises:
            ValueError: ``cluster_client_num`` is below 1.
        """
        if cluster_client_num < 1:
            raise ValueError(f"cluster_client_num must be >= 1, got {cluster_client_num}")
        self._items: deque[tuple[str, npt.NDArray[np.float64]]] = deque(maxlen=cluster_client_num)

    @property
    def capacity(self) -> int:
        """The ``cluster_client_num`` this window keeps."""
        assert self._items.maxlen is not None
        return self._items.maxlen

    def push(self, fl_id: str, vector: Sequence[float] | npt.ArrayLike) -> None:
        """Adds one client's vector, dropping the oldest when full.

        Args:
            fl_id: The client's id.
            vector: Its concatenated eval data, 1-D.
        """
        self._items.appendleft((fl_id, np.asarray(vector, dtype=np.float64).reshape(-1)))

    def items(self) -> list[tuple[str, npt.NDArray[np.float64]]]:
        """The kept ``(fl_id, vector)`` pairs, newest first (``LRANGE 0 N-1`` order)."""
        return list(self._items)

    def is_full(self) -> bool:
        """Whether ``cluster_client_num`` vectors are there, as a score requires."""
        return len(self._items) == self.capacity

    def score(self, eval_type: str) -> float:
        """Scores the window; 0.0 while it holds fewer than ``cluster_client_num`` vectors.

        Raises:
            ValueError: See :func:`score`; also when the vectors differ in length.
        """
        if not self.is_full():
            return 0.0
        return score(np.stack([vector for _, vector in self._items]), eval_type)
