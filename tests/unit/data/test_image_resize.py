"""Bilinear resizing used for 8x8 digits and 28x28 FEMNIST images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as functional

from mindfed.data.image_resize import resize_bilinear


@pytest.mark.parametrize(("side_in", "side_out"), [(8, 32), (28, 32), (32, 28), (5, 5)])
def test_matches_torch_bilinear_without_corner_alignment(side_in: int, side_out: int) -> None:
    # Prepare
    images = np.random.default_rng(0).random((3, 1, side_in, side_in)).astype(np.float32)

    # Execute
    ours = resize_bilinear(images, side_out)

    # Assert
    theirs = functional.interpolate(torch.from_numpy(images), size=(side_out, side_out),
                                    mode="bilinear", align_corners=False, antialias=False)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-5)


def test_rejects_bad_size_and_shape() -> None:
    with pytest.raises(ValueError, match="size"):
        resize_bilinear(np.zeros((2, 2)), 0)
    with pytest.raises(ValueError, match="2 axes"):
        resize_bilinear(np.zeros(4), 4)
