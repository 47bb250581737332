"""The default federated dataset: scikit-learn's bundled 8x8 digits, so demos need no download.

1797 images of 10 classes are scaled to [0, 1], upsampled to 32x32 (LeNet5 input), split
into a stratified held-out test set, and the rest is shared out non-IID across devices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from mindfed.data.device_data import DeviceData
from mindfed.data.dirichlet_split import dirichlet_split
from mindfed.data.image_resize import resize_bilinear

logger = logging.getLogger(__name__)

DIGITS_IMAGE_SIZE = 32
# sklearn's digits are 4-bit counts of set pixels in 4x4 blocks: 16 is fully on.
_DIGITS_MAX_VALUE = 16.0


@dataclass(frozen=True, slots=True)
class FederatedDataset:
    """Per-device training data plus the shared held-out test set.

    Attributes:
        devices: one DeviceData per device, disjoint, together the whole training split.
        test: held-out samples for evaluating the global model.
        num_classes: number of labels (labels are 0..num_classes-1).
        num_channel: image channels (the C of (N, C, H, W)).
    """

    devices: list[DeviceData]
    test: DeviceData
    num_classes: int
    num_channel: int


def load_federated_digits(num_devices: int, alpha: float = 0.5, seed: int = 0,
                          test_fraction: float = 0.2,
                          min_samples_per_device: int = 10) -> FederatedDataset:
    """Loads scikit-learn digits as a non-IID federated dataset.

    Args:
        num_devices: number of devices, >= 1.
        alpha: Dirichlet label-skew concentration, > 0 (smaller is more skewed).
        seed: seeds both the test split and the device split.
        test_fraction: share of samples held out for testing, in (0, 1), stratified by label.
        min_samples_per_device: least training samples any device gets.

    Returns:
        A FederatedDataset with x float32 (N, 1, 32, 32) in [0, 1] and y int64 in 0..9.

    Raises:
        ValueError: bad arguments, or too few samples for the per-device minimum.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = load_digits()
    images = resize_bilinear(digits.images / _DIGITS_MAX_VALUE, DIGITS_IMAGE_SIZE)[:, None]
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=test_fraction,
                                           random_state=seed, stratify=labels)
    train = DeviceData(x=images[train_idx], y=labels[train_idx])
    parts = dirichlet_split(train.y, num_devices, alpha, seed, min_samples_per_device)
    devices = [train.subset(part) for part in parts]
    logger.info("digits: %d devices, sizes %s, %d test samples",
                num_devices, [d.num_samples for d in devices], len(test_idx))
    return FederatedDataset(devices=devices, test=DeviceData(x=images[test_idx], y=labels[test_idx]),
                            num_classes=10, num_channel=1)
