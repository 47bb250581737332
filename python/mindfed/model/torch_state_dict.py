"""Reads a PyTorch `state_dict` saved by `torch.save` (zip format) without importing torch.

A torch checkpoint is a zip: `<root>/data.pkl` is a pickle of the state dict in which each tensor is
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and each storage is a persistent id
`('storage', torch.FloatStorage, key, location, numel)` whose bytes are in `<root>/data/<key>`.

Security: a pickle can run any callable it names, so the unpickler here resolves only a fixed list of names,
each to a function of ours that builds numpy arrays; every other global is refused. Nothing is executed.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from mindfed.errors import ModelFormatError

# torch storage class name -> numpy dtype of its bytes ("BFloat16Storage" is widened to float32 on load).
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("f8"),
    "FloatStorage": np.dtype("f4"),
    "HalfStorage": np.dtype("f2"),
    "BFloat16Storage": np.dtype("u2"),
    "LongStorage": np.dtype("i8"),
    "IntStorage": np.dtype("i4"),
    "ShortStorage": np.dtype("i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype(np.bool_),
    "UntypedStorage": np.dtype("u1"),
}


@dataclass(frozen=True, slots=True)
class _StorageType:
    """What the pickle's `torch.FloatStorage` (etc.) global resolves to: just a dtype name."""

    name: str


@dataclass(frozen=True, slots=True)
class _Tensor:
    """A rebuilt tensor. Frozen with slots, so a pickle's BUILD opcode cannot alter it."""

    array: np.ndarray


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_ignored: Any, **_ignored_kw: Any
) -> _Tensor:
    """Our `torch._utils._rebuild_tensor_v2`: a strided view of the storage, copied to a contiguous array."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise pickle.UnpicklingError("tensor storage is not a storage")
    shape, strides = tuple(size), tuple(stride)
    ints = (storage_offset, *shape, *strides)
    if len(shape) != len(strides) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
        raise pickle.UnpicklingError(f"bad tensor geometry offset={storage_offset} size={size} stride={stride}")
    if 0 not in shape:
        last = storage_offset + sum((dim - 1) * step for dim, step in zip(shape, strides, strict=True))
        if last >= storage.size:
            raise pickle.UnpicklingError(f"tensor reaches element {last} of a {storage.size}-element storage")
    elif storage_offset > storage.size:
        raise pickle.UnpicklingError(f"tensor offset {storage_offset} is past a {storage.size}-element storage")
    base = storage[storage_offset:]
    view = np.lib.stride_tricks.as_strided(
        base, shape=shape, strides=tuple(step * storage.itemsize for step in strides), writeable=False
    )
    return _Tensor(np.array(view, order="C"))  # not ascontiguousarray: it turns 0-d into 1-d


def _rebuild_parameter(data: Any, *_ignored: Any) -> Any:
    """Our `torch._utils._rebuild_parameter` (and `_with_state`): an nn.Parameter is just its tensor here."""
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError("parameter data is not a tensor")
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
    ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage"),
}


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles `data.pkl`, resolving only `_ALLOWED_GLOBALS` and loading storages from the zip."""

    def __init__(self, payload: bytes, archive: zipfile.ZipFile, root: str, byteorder: str) -> None:
        super().__init__(io.BytesIO(payload))
        self._archive, self._root, self._byteorder = archive, root, byteorder
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"refusing global {module}.{name}: not part of a tensor state_dict")
        return allowed

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or "/" in key:
            raise pickle.UnpicklingError(f"bad storage reference {pid!r:.80}")
        if key not in self._storages:
            self._storages[key] = self._load_storage(storage_type.name, key, numel)
        return self._storages[key]

    def _load_storage(self, type_name: str, key: str, numel: Any) -> np.ndarray:
        dtype = _STORAGE_DTYPES[type_name].newbyteorder("<" if self._byteorder == "little" else ">")
        member = f"{self._root}/data/{key}"
        try:
            info = self._archive.getinfo(member)
        except KeyError as exc:
            raise pickle.UnpicklingError(f"storage {member} is missing") from exc
        if not isinstance(numel, int) or info.file_size != numel * dtype.itemsize:
            raise pickle.UnpicklingError(f"storage {member} has {info.file_size} bytes, expected {numel} x {dtype}")
        flat = np.frombuffer(self._archive.read(member), dtype=dtype).astype(dtype.newbyteorder("="))
        if type_name == "BFloat16Storage":
            return (flat.astype(np.uint32) << 16).view(np.float32)  # bfloat16 = upper half of a float32
        return flat


def read_torch_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads the floating-point tensors of a `torch.save`d state dict, as float32, in the dict's order.

    Non-float tensors (e.g. BatchNorm's `num_batches_tracked`) and non-tensor values are left out.

    Args:
        path: a zip-format torch file (`.pt`, `.pth`, `.bin`); the legacy pre-1.6 format is not supported.

    Returns:
        name -> owned C-contiguous float32 array.

    Raises:
        ModelFormatError: not a torch zip file, a pickle naming anything outside a tensor state dict, a broken
            storage reference, or a top level that is not a mapping.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            root = _archive_root(archive, path)
            byteorder = _byteorder(archive, root)
            payload = archive.read(f"{root}/data.pkl")
            state = _StateDictUnpickler(payload, archive, root, byteorder).load()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelFormatError(f"{path}: not a readable torch zip file: {exc}") from exc
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ModelFormatError(f"{path}: cannot unpickle state dict: {exc}") from exc
    if not isinstance(state, dict):
        raise ModelFormatError(f"{path}: top level is {type(state).__name__}, expected a state dict")
    return {
        str(name): value.array.astype(np.float32)
        for name, value in state.items()
        if isinstance(value, _Tensor) and value.array.dtype.kind == "f"
    }


def _archive_root(archive: zipfile.ZipFile, path: str | os.PathLike[str]) -> str:
    """The zip's top folder holding `data.pkl` (torch names it after the file, or `archive`)."""
    roots = [name[: -len("/data.pkl")] for name in archive.namelist() if name.endswith("/data.pkl")]
    if len(roots) != 1 or "/" in roots[0]:
        raise ModelFormatError(f"{path}: expected one <root>/data.pkl in the zip, found {roots}")
    return roots[0]


def _byteorder(archive: zipfile.ZipFile, root: str) -> str:
    """Storage byte order; files from torch < 1.13 have no record and are little-endian."""
    try:
        recorded = archive.read(f"{root}/byteorder").decode("ascii").strip()
    except KeyError:
        return "little"
    if recorded not in ("little", "big"):
        raise pickle.UnpicklingError(f"unknown byteorder {recorded!r}")
    return recorded
