"""MindSpore's LeNet5 (the model of the federated examples), initialised in numpy for tests and simulations."""

from __future__ import annotations

import math

import numpy as np

from mindfed.model.weights import ModelWeights

# Parameter names in MindSpore's order (sorted, as ModelWeights keeps them). Convolutions have no bias.
LENET5_NAMES: tuple[str, ...] = (
    "conv1.weight",
    "conv2.weight",
    "fc1.bias",
    "fc1.weight",
    "fc2.bias",
    "fc2.weight",
    "fc3.bias",
    "fc3.weight",
)


def lenet5_shapes(num_class: int = 10, num_channel: int = 1) -> dict[str, tuple[int, ...]]:
    """Shapes of LeNet5(num_class, num_channel) for 32x32 inputs ('valid' 5x5 convs, 2x2 max-pools).

    Raises:
        ValueError: `num_class` or `num_channel` is below 1.
    """
    if num_class < 1 or num_channel < 1:
        raise ValueError(f"num_class and num_channel must be >= 1, got {num_class}, {num_channel}")
    return {
        "conv1.weight": (6, num_channel, 5, 5),
        "conv2.weight": (16, 6, 5, 5),
        "fc1.weight": (120, 16 * 5 * 5),
        "fc1.bias": (120,),
        "fc2.weight": (84, 120),
        "fc2.bias": (84,),
        "fc3.weight": (num_class, 84),
        "fc3.bias": (num_class,),
    }


def init_lenet5(num_class: int = 10, num_channel: int = 1, seed: int = 0) -> ModelWeights:
    """Returns freshly initialised LeNet5 weights, deterministic for a given seed.

    Uses PyTorch's default initialisation: kaiming-uniform with a=sqrt(5), which is U(-b, b) with
    b = 1/sqrt(fan_in), for weights, and the same bound for biases (fan_in of the layer's weight).

    Args:
        num_class: outputs of fc3 (62 for FEMNIST).
        num_channel: input channels of conv1 (1 for grey, 3 for RGB).
        seed: seed of `np.random.default_rng`.

    Raises:
        ValueError: `num_class` or `num_channel` is below 1.
    """
    shapes = lenet5_shapes(num_class, num_channel)
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():  # layer order, so each layer's weight precedes its bias
        layer = name.rsplit(".", 1)[0]
        fan_in = math.prod(shapes[f"{layer}.weight"][1:])
        bound = 1.0 / math.sqrt(fan_in)
        tensors[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return ModelWeights(tensors)
