"""The bundled scikit-learn digits as a federated dataset."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mindfed.data.device_data import DeviceData
from mindfed.data.digits import load_federated_digits
from mindfed.data.image_resize import resize_bilinear

_DIGITS_TOTAL = 1797


def test_devices_and_test_split_cover_the_dataset_once() -> None:
    # Execute
    dataset = load_federated_digits(num_devices=8, alpha=0.5, seed=0, test_fraction=0.2)

    # Assert
    sizes = [d.num_samples for d in dataset.devices]
    assert len(sizes) == 8
    assert min(sizes) >= 10
    assert sum(sizes) + dataset.test.num_samples == _DIGITS_TOTAL
    assert dataset.test.num_samples == 360
    assert (dataset.num_classes, dataset.num_channel) == (10, 1)
    assert dataset.test.x.shape[1:] == (1, 32, 32)
    assert dataset.test.x.dtype == np.float32
    assert dataset.test.x.min() >= 0.0
    assert dataset.test.x.max() <= 1.0
    # stratified: every class in the test split, in near-equal numbers
    assert np.bincount(dataset.test.y, minlength=10).min() >= 30
    # the parts hold every upsampled image exactly as often as the dataset does
    parts = [*dataset.devices, dataset.test]
    rows = np.concatenate([d.x.reshape(d.num_samples, -1) for d in parts])
    labels = np.concatenate([d.y for d in parts])
    full = resize_bilinear(load_digits().images / 16.0, 32).reshape(_DIGITS_TOTAL, -1)
    ours, our_counts = np.unique(np.column_stack([rows, labels]), axis=0, return_counts=True)
    theirs, their_counts = np.unique(np.column_stack([full, load_digits().target]), axis=0,
                                     return_counts=True)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_counts, their_counts)


def test_same_seed_gives_identical_devices() -> None:
    # Execute
    first = load_federated_digits(4, seed=5)
    again = load_federated_digits(4, seed=5)

    # Assert
    for a, b in zip(first.devices, again.devices, strict=True):
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.x, b.x)


def test_bad_test_fraction_raises() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        load_federated_digits(4, test_fraction=1.0)


def test_device_data_rejects_wrong_dtype_and_length() -> None:
    with pytest.raises(ValueError, match="float32"):
        DeviceData(x=np.zeros((2, 1, 4, 4)), y=np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="int64"):
        DeviceData(x=np.zeros((2, 1, 4, 4), dtype=np.float32), y=np.zeros(2, dtype=np.int32))
    with pytest.raises(ValueError, match="2 samples, y has 3"):
        DeviceData(x=np.zeros((2, 1, 4, 4), dtype=np.float32), y=np.zeros(3, dtype=np.int64))
