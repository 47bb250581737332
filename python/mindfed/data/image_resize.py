"""Bilinear resizing of square single-channel image batches, in numpy (no torch in `data`)."""

from __future__ import annotations

import numpy as np


def _interpolation_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of 1-D linear interpolation with half-pixel centres.

    Half-pixel centres (align_corners=False) match torch/OpenCV/MindSpore Resize, so a
    device resizing with those libraries sees the same pixels as this server-side copy.
    """
    scale = size_in / size_out
    centres = (np.arange(size_out) + 0.5) * scale - 0.5
    centres = np.clip(centres, 0.0, size_in - 1)
    low = np.floor(centres).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    frac = centres - low
    matrix = np.zeros((size_out, size_in), dtype=np.float64)
    rows = np.arange(size_out)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """Resizes images (..., H, W) to (..., size, size) by bilinear interpolation.

    Args:
        images: array whose last two axes are height and width.
        size: output height and width, >= 1.

    Returns:
        float32 array (..., size, size); an unchanged copy when H == W == size.

    Raises:
        ValueError: if `size` < 1 or `images` has fewer than 2 axes.
    """
    if size < 1:
        raise ValueError(f"image size must be >= 1, got {size}")
    if images.ndim < 2:
        raise ValueError(f"images need at least 2 axes (H, W), got shape {images.shape}")
    rows = _interpolation_matrix(images.shape[-2], size)
    cols = _interpolation_matrix(images.shape[-1], size)
    out: np.ndarray = np.einsum("oh,...hw,pw->...op", rows, images.astype(np.float64), cols)  # stubs: Any
    return out.astype(np.float32)
