"""The labelled images one device trains on, in the layout LeNet5 expects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class DeviceData:
    """One device's samples.

    Attributes:
        x: float32 images, shape (N, C, H, W), values in [0, 1].
        y: int64 class labels, shape (N,).
    """

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype != np.float32 or self.x.ndim != 4:
            raise ValueError(f"x must be float32 (N, C, H, W), got {self.x.dtype} {self.x.shape}")
        if self.y.dtype != np.int64 or self.y.ndim != 1:
            raise ValueError(f"y must be int64 (N,), got {self.y.dtype} {self.y.shape}")
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} samples, y has {len(self.y)}")

    @property
    def num_samples(self) -> int:
        """Number of samples N."""
        return len(self.y)

    def subset(self, indices: np.ndarray) -> DeviceData:
        """Returns the samples at `indices` (copies, so the parts never share memory).

        Args:
            indices: integer index array into the samples.

        Returns:
            A new DeviceData holding those samples in that order.
        """
        return DeviceData(x=self.x[indices].copy(), y=self.y[indices].copy())
