"""Local training and evaluation of LeNet5 on one device's data, weights in and out as numpy.

Threads: torch's intra-op thread count is process-wide, so it is the caller's choice, not
ours: a simulator training several devices at once calls `torch.set_num_threads(1)` once
and runs one device per core; a single trainer can leave torch's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mindfed.client.lenet_torch import LeNet5, lenet_shapes
from mindfed.data.device_data import DeviceData

_MOMENTUM = 0.9  # MindSpore's LeNet example trains with nn.Momentum(momentum=0.9)
_EVAL_BATCH = 512


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What one local training run returns.

    Attributes:
        weights: name -> float32 array, same names and shapes as the weights given.
        loss: mean cross-entropy over the samples of the last epoch.
        accuracy: share of samples of the last epoch classified correctly while training.
        num_samples: samples on the device (the FedAvg weight).
    """

    weights: dict[str, np.ndarray]
    loss: float
    accuracy: float
    num_samples: int


def unflatten(flat: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Reshapes flat weight vectors (as the server sends them) to their parameter shapes.

    Args:
        flat: name -> 1-D (or any-shaped) array holding that parameter's values.
        shapes: name -> shape, e.g. `lenet_shapes(num_class)`; its keys must equal `flat`'s.

    Returns:
        name -> float32 C-contiguous array of the given shape, in `shapes` order.

    Raises:
        ValueError: names differ or a size does not match its shape.
    """
    if set(flat) != set(shapes):
        raise ValueError(f"weight names differ: missing {sorted(set(shapes) - set(flat))}, "
                         f"unexpected {sorted(set(flat) - set(shapes))}")
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        values = np.asarray(flat[name], dtype=np.float32)
        if values.size != int(np.prod(shape)):
            raise ValueError(f"{name}: {values.size} values do not fill shape {tuple(shape)}")
        out[name] = np.ascontiguousarray(values.reshape(shape))
    return out


def _build_model(weights: Mapping[str, np.ndarray], num_class: int, num_channel: int) -> LeNet5:
    shaped = unflatten(weights, lenet_shapes(num_class, num_channel))
    # Built on the meta device: a normal build would draw its (discarded) init from torch's
    # global RNG. The copies keep training from writing into the caller's arrays.
    with torch.device("meta"):
        model = LeNet5(num_class, num_channel)
    model.load_state_dict({name: torch.tensor(array) for name, array in shaped.items()}, assign=True)
    return model


def _tensor(array: np.ndarray) -> torch.Tensor:
    # from_numpy shares memory and warns on read-only arrays (e.g. np.frombuffer of a request body).
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def train_local(weights: Mapping[str, np.ndarray], data: DeviceData, epochs: int, batch_size: int,
                lr: float, seed: int = 0, num_class: int = 10) -> TrainResult:
    """Trains LeNet5 from `weights` on one device's data with SGD + momentum 0.9 and cross-entropy.

    Momentum state starts at zero on every call, like a fresh MindSpore optimizer per
    iteration. Shuffling uses a private generator seeded by `seed`, so runs repeat exactly
    and torch's global RNG is left alone. Uses however many threads torch is set to.

    Args:
        weights: name -> float32 array (flat or shaped) for every LeNet5 parameter.
        data: the device's samples, x (N, C, 32, 32).
        epochs: passes over the data, >= 1.
        batch_size: samples per step, >= 1 (the last batch of an epoch may be smaller).
        lr: learning rate, > 0.
        seed: seeds the per-epoch shuffling.
        num_class: number of classes of the model.

    Returns:
        The trained weights (shaped float32 copies) with last-epoch loss and accuracy.

    Raises:
        ValueError: bad arguments, no samples, or weights that do not fit LeNet5.
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    if data.num_samples == 0:
        raise ValueError("cannot train on a device with no samples")
    model = _build_model(weights, num_class, int(data.x.shape[1]))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=_MOMENTUM)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    x_all, y_all = _tensor(data.x), _tensor(data.y)
    shuffler = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        loss_sum, correct = 0.0, 0
        # torch.split is Tensor.split with annotations (the method has none)
        for batch in torch.split(torch.randperm(data.num_samples, generator=shuffler), batch_size):
            x, y = x_all[batch], y_all[batch]
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            # Sum-reduced for exact epoch statistics; the step uses the batch mean.
            (loss / len(batch)).backward()
            optimizer.step()
            loss_sum += float(loss.detach())
            correct += int((logits.detach().argmax(1) == y).sum())
    trained = {name: t.detach().numpy().copy() for name, t in model.state_dict().items()}
    return TrainResult(weights=trained, loss=loss_sum / data.num_samples,
                       accuracy=correct / data.num_samples, num_samples=data.num_samples)


def evaluate(weights: Mapping[str, np.ndarray], data: DeviceData, num_class: int = 10) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of LeNet5 with `weights` on `data`.

    Args:
        weights: name -> float32 array (flat or shaped) for every LeNet5 parameter.
        data: samples to score, x (N, C, 32, 32), N >= 1.
        num_class: number of classes of the model.

    Returns:
        (accuracy in [0, 1], mean cross-entropy loss).

    Raises:
        ValueError: no samples, or weights that do not fit LeNet5.
    """
    if data.num_samples == 0:
        raise ValueError("cannot evaluate on no samples")
    model = _build_model(weights, num_class, int(data.x.shape[1]))
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    loss_sum, correct = 0.0, 0
    with torch.inference_mode():
        for start in range(0, data.num_samples, _EVAL_BATCH):
            x = _tensor(data.x[start:start + _EVAL_BATCH])
            y = _tensor(data.y[start:start + _EVAL_BATCH])
            logits = model(x)
            loss_sum += float(loss_fn(logits, y))
            correct += int((logits.argmax(1) == y).sum())
    return correct / data.num_samples, loss_sum / data.num_samples
