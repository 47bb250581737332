"""A torch model's named float tensors as the flat float32 arrays the FL protocol carries, and back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from mindfed.errors import ConfigError


def check_names(model: nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Every weight the server aggregates must be a float tensor of the same size in `model`.

    Raises:
        ConfigError: naming the missing or mismatching tensors (the worker's model is not the job's).
    """
    state = model.state_dict()
    missing = sorted(name for name in shapes if name not in state)
    wrong = sorted(name for name in shapes if name in state
                   and (state[name].numel() != int(np.prod(shapes[name])) or not state[name].is_floating_point()))
    if missing or wrong:
        raise ConfigError(f"the worker's model does not match the server's: missing {missing[:5]}, "
                          f"different size or dtype {wrong[:5]}")


def read_flat(model: nn.Module, names: Iterable[str]) -> dict[str, np.ndarray]:
    """name -> a fresh flat float32 copy of that tensor of `model`."""
    state = model.state_dict()
    return {name: state[name].detach().cpu().reshape(-1).to(torch.float32).numpy().copy() for name in names}


def load_flat(model: nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Copy flat float32 arrays into `model`'s tensors of the same names, in place (optimizer state stays valid)."""
    state = model.state_dict()
    with torch.no_grad():
        for name, flat in weights.items():
            target = state[name]
            target.copy_(torch.from_numpy(np.asarray(flat, dtype=np.float32)).reshape(target.shape))
