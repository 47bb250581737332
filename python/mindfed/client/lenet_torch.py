"""LeNet5 in torch with MindSpore's parameter names and shapes, so weights move between the two as-is.

MindSpore's model zoo LeNet5 (the MindSpore Federated example model): `nn.Conv2d` with
`pad_mode="valid"` and no bias (MindSpore's default `has_bias=False`), `nn.Dense` layers
with bias. Both frameworks store conv kernels (out, in, kh, kw) and dense weights (out, in),
and both flatten NCHW in the same order, so no transposes are needed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

LENET_INPUT_SIDE = 32


class LeNet5(nn.Module):
    """LeNet5 for (N, num_channel, 32, 32) inputs, returning (N, num_class) logits.

    Args:
        num_class: number of output classes.
        num_channel: input image channels.
    """

    def __init__(self, num_class: int = 10, num_channel: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_channel, 6, 5, padding=0, bias=False)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=0, bias=False)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_class)
        self.relu = nn.ReLU()
        self.max_pool2d = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images.

        Args:
            x: float32 (N, num_channel, 32, 32).

        Returns:
            float32 (N, num_class) unnormalised class scores.
        """
        x = self.max_pool2d(self.relu(self.conv1(x)))
        x = self.max_pool2d(self.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        logits: torch.Tensor = self.fc3(x)  # nn.Module.__call__ returns Any
        return logits


def lenet_shapes(num_class: int = 10, num_channel: int = 1) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of LeNet5, in state_dict (and MindSpore checkpoint) order.

    Args:
        num_class: number of output classes.
        num_channel: input image channels.

    Returns:
        The eight parameters conv1.weight, conv2.weight, fc1.weight, fc1.bias, fc2.weight,
        fc2.bias, fc3.weight, fc3.bias with their shapes.
    """
    return {
        "conv1.weight": (6, num_channel, 5, 5),
        "conv2.weight": (16, 6, 5, 5),
        "fc1.weight": (120, 400),
        "fc1.bias": (120,),
        "fc2.weight": (84, 120),
        "fc2.bias": (84,),
        "fc3.weight": (num_class, 84),
        "fc3.bias": (num_class,),
    }


def init_lenet_weights(num_class: int = 10, num_channel: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh LeNet5 weights (torch's default init) from a seed, without touching torch's global RNG.

    Args:
        num_class: number of output classes.
        num_channel: input image channels.
        seed: the same seed always gives the same weights.

    Returns:
        Name -> float32 array, keys and shapes as in `lenet_shapes`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LeNet5(num_class, num_channel)
    return {name: t.detach().numpy().copy() for name, t in model.state_dict().items()}
