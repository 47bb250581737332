"""STABLE_PW_ENCRYPT masks (spec §7.1): a pair's two streams are exact negatives, the workers' noises sum to zero,
and a worker's mask spans its tensors concatenated in name order (MindSpore's worker, not Java's offset-0 bug)."""

from __future__ import annotations

import numpy as np

from mindfed.worker.stable_pw_masks import PeerKey, StableKeys


def workers(ids: list[str]) -> tuple[dict[str, StableKeys], dict[str, PeerKey]]:
    keys = {fl_id: StableKeys.fresh(fl_id) for fl_id in ids}
    return keys, {fl_id: PeerKey(k.s_pk, k.pw_iv, k.pw_salt) for fl_id, k in keys.items()}


def test_two_workers_noises_are_exact_negatives() -> None:
    keys, peers = workers(["worker_a", "worker_b"])
    a, b = keys["worker_a"].noise(peers, 1000), keys["worker_b"].noise(peers, 1000)
    assert np.abs(a).max() > 0.5
    np.testing.assert_array_equal(a, -b)


def test_noises_of_many_workers_cancel_in_the_sum() -> None:
    keys, peers = workers([f"worker_{i}" for i in range(5)])
    total = sum(k.noise(peers, 2000).astype(np.float64) for k in keys.values())
    assert np.abs(total).max() < 1e-6  # float32 rounding of each worker's 4-term sum only


def test_mask_spans_the_tensors_in_name_order() -> None:
    keys, peers = workers(["worker_a", "worker_b"])
    upload = {"b": np.zeros(3, np.float32), "a": np.zeros(2, np.float32)}
    masked = keys["worker_a"].mask(upload, peers)
    noise = keys["worker_a"].noise(peers, 5)
    np.testing.assert_array_equal(masked["a"], noise[:2])
    np.testing.assert_array_equal(masked["b"], noise[2:])
