import time
from types import ModuleType

import numpy as np
import pytest

from mindfed.summary.unsupervised_eval import UnsupervisedEvalType, UnsupervisedWindow, score


@pytest.fixture(scope="module")
def metrics() -> ModuleType:
    """scikit-learn's metrics, the reference implementation; its tests skip without it."""
    module: ModuleType = pytest.importorskip("sklearn.metrics")
    return module


SPEC_VECTORS = [[3, 2, 1], [4, 3, 2], [3, 4, 5]]


def clustered_vectors(seed: int, n: int, k: int) -> np.ndarray:
    """Softmax-like outputs: each row leans towards one class, with noise."""
    rng = np.random.default_rng(seed)
    leaning = rng.integers(0, k, size=n)
    vectors = rng.normal(0.0, 0.6, size=(n, k))
    vectors[np.arange(n), leaning] += 1.5
    return vectors


def test_silhouette_matches_spec_unit_test() -> None:
    assert score(SPEC_VECTORS, "SILHOUETTE_SCORE") == pytest.approx(0.363489, abs=1e-6)


def test_not_eval_scores_zero() -> None:
    assert score(SPEC_VECTORS, UnsupervisedEvalType.NOT_EVAL) == 0.0


@pytest.mark.parametrize(("seed", "n", "k"), [(0, 40, 3), (1, 200, 10), (2, 7, 4), (3, 500, 2)])
@pytest.mark.parametrize(
    ("eval_type", "reference"),
    [
        ("SILHOUETTE_SCORE", "silhouette_score"),
        ("CALINSKI_HARABASZ_SCORE", "calinski_harabasz_score"),
        ("DAVIES_BOULDIN_SCORE", "davies_bouldin_score"),
    ],
)
def test_scores_match_scikit_learn(
    metrics: ModuleType, seed: int, n: int, k: int, eval_type: str, reference: str
) -> None:
    # Prepare
    vectors = clustered_vectors(seed, n, k)
    labels = vectors.argmax(axis=1)
    assert 2 <= len(np.unique(labels)) <= n - 1

    # Execute
    ours = score(vectors, eval_type)

    # Assert
    assert ours == pytest.approx(getattr(metrics, reference)(vectors, labels), rel=1e-9, abs=1e-9)


def test_davies_bouldin_relabels_non_contiguous_labels(metrics: ModuleType) -> None:
    # Prepare: no vector has its maximum in column 1, so the raw labels are {0, 2}.
    # MindSpore's centroid table would keep an empty cluster 1 and average over 3.
    vectors = clustered_vectors(4, 60, 3)
    vectors[:, 1] = -10.0
    labels = vectors.argmax(axis=1)
    assert set(labels.tolist()) == {0, 2}

    # Execute
    ours = score(vectors, "DAVIES_BOULDIN_SCORE")

    # Assert
    assert ours == pytest.approx(metrics.davies_bouldin_score(vectors, labels), rel=1e-9)


def test_silhouette_needs_two_to_n_minus_one_labels() -> None:
    # One label (all argmax 0), then n labels (every vector its own class).
    assert score([[5, 1, 1], [4, 0, 1], [9, 2, 2]], "SILHOUETTE_SCORE") == 0.0
    assert score([[5, 1, 1], [0, 4, 1], [2, 2, 9]], "SILHOUETTE_SCORE") == 0.0


def test_silhouette_point_with_zero_intra_distance_scores_zero() -> None:
    # Prepare: cluster 0 holds two identical points (a == 0), cluster 1 two distinct ones.
    vectors = np.array([[2.0, 1.0], [2.0, 1.0], [0.0, 3.0], [0.0, 5.0]])
    a = 2.0  # distance between the two points of cluster 1
    nearest = [float(np.linalg.norm(vectors[i] - vectors[0])) for i in (2, 3)]
    expected_cluster1 = [(b - a) / max(a, b) for b in nearest]

    # Execute
    ours = score(vectors, "SILHOUETTE_SCORE")

    # Assert: MindSpore gives the duplicates 0 where scikit-learn would give them 1.
    assert ours == pytest.approx((0.0 + 0.0 + sum(expected_cluster1)) / 4)


def test_calinski_harabasz_is_one_when_clusters_are_points() -> None:
    vectors = [[3, 1], [3, 1], [1, 4], [1, 4]]

    assert score(vectors, "CALINSKI_HARABASZ_SCORE") == 1.0


def test_single_cluster_scores_zero_for_every_type() -> None:
    vectors = [[5, 1], [4, 2], [9, 0]]

    for eval_type in ("SILHOUETTE_SCORE", "CALINSKI_HARABASZ_SCORE", "DAVIES_BOULDIN_SCORE"):
        assert score(vectors, eval_type) == 0.0


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="EUCLID"):
        score(SPEC_VECTORS, "EUCLID")
    with pytest.raises(ValueError, match="shape"):
        score([1.0, 2.0], "SILHOUETTE_SCORE")
    with pytest.raises(ValueError, match="NaN"):
        score([[1.0, np.nan], [2.0, 1.0]], "SILHOUETTE_SCORE")


def test_silhouette_of_thousands_of_clients_is_fast() -> None:
    # Prepare
    vectors = clustered_vectors(5, 3000, 10)

    # Execute
    started = time.perf_counter()
    ours = score(vectors, "SILHOUETTE_SCORE")
    elapsed_s = time.perf_counter() - started

    # Assert
    assert elapsed_s < 2.0
    assert -1.0 <= ours <= 1.0


def test_window_keeps_latest_n_newest_first() -> None:
    # Prepare
    window = UnsupervisedWindow(3)

    # Execute
    for index in range(5):
        window.push(f"client-{index}", [index, 0.0])

    # Assert
    assert [fl_id for fl_id, _ in window.items()] == ["client-4", "client-3", "client-2"]
    assert window.is_full()
    assert window.capacity == 3


def test_window_scores_zero_until_full_then_scores_its_vectors() -> None:
    # Prepare
    window = UnsupervisedWindow(3)
    window.push("a", SPEC_VECTORS[0])
    window.push("b", SPEC_VECTORS[1])

    # Execute
    before = window.score("SILHOUETTE_SCORE")
    window.push("c", SPEC_VECTORS[2])
    after = window.score("SILHOUETTE_SCORE")

    # Assert
    assert before == 0.0
    assert after == pytest.approx(0.363489, abs=1e-6)


def test_window_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError, match="cluster_client_num"):
        UnsupervisedWindow(0)
