"""Loading an initial model from any supported file, chosen by the file's suffix."""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from mindfed.errors import ModelFormatError
from mindfed.model.ckpt import read_ckpt
from mindfed.model.mindir import read_mindir
from mindfed.model.safetensors import read_safetensors, save_safetensors
from mindfed.model.torch_state_dict import read_torch_state_dict
from mindfed.model.weights import ModelWeights

__all__ = ["SUPPORTED_SUFFIXES", "is_optimizer_state", "load_weights", "save_safetensors"]

logger = logging.getLogger(__name__)

# Parameters a MindSpore training checkpoint carries besides the model: optimizer slots and schedule scalars.
_OPTIMIZER_PREFIXES = ("moments.", "accum.", "moment1.", "moment2.", "beta1_power", "beta2_power")
_OPTIMIZER_NAMES = frozenset({"learning_rate", "momentum", "global_step"})


def is_optimizer_state(name: str) -> bool:
    """Whether a checkpoint parameter is optimizer state rather than a model weight (never federated)."""
    return name in _OPTIMIZER_NAMES or name.startswith(_OPTIMIZER_PREFIXES)


def _ckpt_weights(path: Path) -> dict[str, np.ndarray]:
    """Like MindSpore's FL server: Float32 model parameters only; optimizer state and other dtypes skipped."""
    kept: dict[str, np.ndarray] = {}
    for name, array in read_ckpt(path).items():
        if is_optimizer_state(name):
            logger.debug("%s: skipping optimizer state %r", path, name)
        elif array.dtype != np.float32:
            logger.info("%s: skipping %r of dtype %s (only float32 is federated)", path, name, array.dtype)
        else:
            kept[name] = array
    return kept


def _float_tensors(path: Path, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Floating-point tensors of any width, as float32; integer and bool tensors are skipped."""
    kept: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        if array.dtype.kind == "f":
            kept[name] = array.astype(np.float32, copy=False)
        else:
            logger.info("%s: skipping %r of dtype %s (not floating point)", path, name, array.dtype)
    return kept


def _npz_weights(path: Path) -> dict[str, np.ndarray]:
    """An `.npz` archive's arrays; pickled (object) arrays are refused, never unpickled."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelFormatError(f"{path}: cannot read .npz: {exc}") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ModelFormatError(f"{path}: holds a single array, not an .npz archive of named arrays")
    with loaded:
        try:
            tensors = {name: loaded[name] for name in loaded.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise ModelFormatError(f"{path}: cannot read .npz: {exc}") from exc
    return _float_tensors(path, tensors)


_LOADERS: dict[str, Callable[[Path], dict[str, np.ndarray]]] = {
    ".ckpt": _ckpt_weights,
    ".mindir": lambda path: dict(read_mindir(path).items()),
    ".safetensors": lambda path: _float_tensors(path, read_safetensors(path)),
    ".npz": _npz_weights,
    ".pt": read_torch_state_dict,
    ".pth": read_torch_state_dict,
    ".bin": read_torch_state_dict,
}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_LOADERS)


def load_weights(path: str | os.PathLike[str]) -> ModelWeights:
    """Loads a model file as ModelWeights (all require_aggr True), choosing the reader by suffix.

    `.ckpt` keeps Float32 parameters only and drops optimizer state (`moments.*`, `accum.*`, `learning_rate`,
    `momentum`, `global_step`, ...), as MindSpore's server does; `.mindir` keeps the float32 parameters of the main
    graph (`mindfed.model.mindir`). `.safetensors`, `.npz` and torch state dicts
    (`.pt`, `.pth`, `.bin`) keep every floating-point tensor, cast to float32, and skip the rest.

    Args:
        path: the model file.

    Raises:
        ModelFormatError: unknown suffix (the message lists the supported ones), an unreadable or corrupt file,
            no floating-point tensor in it, or tensors ModelWeights rejects (empty, NaN/inf).
    """
    file = Path(path)
    loader = _LOADERS.get(file.suffix.lower())
    if loader is None:
        raise ModelFormatError(
            f"{path}: unknown model file suffix {file.suffix!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    tensors = loader(file)
    if not tensors:
        raise ModelFormatError(f"{path}: holds no float32-convertible model weights")
    try:
        return ModelWeights(tensors)
    except ValueError as exc:
        raise ModelFormatError(f"{path}: {exc}") from exc
