"""LEAF FEMNIST shards (the MindSpore Federated example data) as per-user DeviceData.

A shard is a JSON file::

    {"users": ["f0000_14", ...], "num_samples": [n0, ...],
     "user_data": {"f0000_14": {"x": [[784 floats in 0..1], ...], "y": [label, ...]}}}

Labels are 0..61 (10 digits, 26 upper-case, 26 lower-case letters). Files are read as
given; nothing is ever downloaded. Tests write small synthetic shards with
`write_leaf_shard`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mindfed.data.device_data import DeviceData
from mindfed.data.image_resize import resize_bilinear

logger = logging.getLogger(__name__)

FEMNIST_NUM_CLASSES = 62
FEMNIST_SIDE = 28
_PIXELS = FEMNIST_SIDE * FEMNIST_SIDE


def _shard_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ValueError(f"{path}: directory holds no *.json LEAF shards")
        return files
    raise ValueError(f"{path}: no such file or directory")


def _user_arrays(file: Path, user: str, record: Any, image_size: int) -> DeviceData:
    if not isinstance(record, dict) or "x" not in record or "y" not in record:
        raise ValueError(f"{file}: user_data[{user!r}] must be an object with 'x' and 'y'")
    try:
        x = np.asarray(record["x"], dtype=np.float32)
        y = np.asarray(record["y"], dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{file}: user {user!r}: x/y are not numeric arrays: {err}") from err
    if len(y) == 0:
        x = x.reshape(0, _PIXELS)
    if x.ndim != 2 or x.shape[1] != _PIXELS:
        raise ValueError(f"{file}: user {user!r}: x must be N rows of {_PIXELS} pixels, got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{file}: user {user!r}: {len(x)} images but y has shape {y.shape}")
    if np.any(y != np.round(y)) or np.any((y < 0) | (y >= FEMNIST_NUM_CLASSES)):
        raise ValueError(f"{file}: user {user!r}: labels must be integers in 0..{FEMNIST_NUM_CLASSES - 1}")
    if not np.all(np.isfinite(x)) or np.any((x < 0.0) | (x > 1.0)):
        raise ValueError(f"{file}: user {user!r}: pixels must be finite and in [0, 1]")
    images = x.reshape(-1, 1, FEMNIST_SIDE, FEMNIST_SIDE)
    if image_size != FEMNIST_SIDE:
        images = resize_bilinear(images, image_size)
    return DeviceData(x=np.ascontiguousarray(images), y=y.astype(np.int64))


def _read_shard(file: Path, image_size: int) -> dict[str, DeviceData]:
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: not a readable JSON file: {err}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("users"), list):
        raise ValueError(f"{file}: LEAF shard needs a 'users' list")
    user_data = doc.get("user_data")
    if not isinstance(user_data, dict):
        raise ValueError(f"{file}: LEAF shard needs a 'user_data' object")
    users: list[Any] = doc["users"]
    counts = doc.get("num_samples")
    if counts is not None and (not isinstance(counts, list) or len(counts) != len(users)):
        raise ValueError(f"{file}: 'num_samples' must list one count per user ({len(users)})")
    shard: dict[str, DeviceData] = {}
    for i, user in enumerate(users):
        if not isinstance(user, str) or user not in user_data:
            raise ValueError(f"{file}: user {user!r} is listed but has no user_data")
        data = _user_arrays(file, user, user_data[user], image_size)
        if counts is not None and counts[i] != data.num_samples:
            raise ValueError(
                f"{file}: user {user!r}: num_samples says {counts[i]}, data has {data.num_samples}")
        shard[user] = data
    return shard


def load_leaf_femnist(path: Path | str, image_size: int = 32) -> dict[str, DeviceData]:
    """Loads LEAF FEMNIST shards into one DeviceData per user (device).

    The 28x28 images are resized bilinearly (half-pixel centres, like MindSpore's
    `vision.Resize`) to `image_size` x `image_size`; 32 is the LeNet5 input.

    Args:
        path: one shard file, or a directory whose `*.json` files are all shards of one split.
        image_size: output side in pixels; 28 keeps the images unchanged.

    Returns:
        User id -> DeviceData (x float32 (N, 1, image_size, image_size), y int64 in 0..61),
        in file order, then the order of each file's "users" list.

    Raises:
        ValueError: the path is missing, a file is not JSON, a shard is malformed (the message
            names the file, the user and the reason), or a user appears in two files.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    users: dict[str, DeviceData] = {}
    owner: dict[str, Path] = {}
    for file in _shard_files(Path(path)):
        for user, data in _read_shard(file, image_size).items():
            if user in users:
                raise ValueError(f"{file}: user {user!r} already came from {owner[user]}")
            users[user], owner[user] = data, file
    logger.info("loaded %d FEMNIST users, %d samples from %s",
                len(users), sum(d.num_samples for d in users.values()), path)
    return users


def write_leaf_shard(path: Path | str, users: Mapping[str, tuple[ArrayLike, ArrayLike]]) -> None:
    """Writes a LEAF FEMNIST shard (for tests and demos that must not download anything).

    Args:
        path: JSON file to create or overwrite.
        users: user id -> (x, y): x is N rows of 784 pixels in [0, 1], y is N integer labels.

    Raises:
        ValueError: if a user's x is not (N, 784) or y does not have N labels.
    """
    names: list[str] = []
    counts: list[int] = []
    user_data: dict[str, dict[str, Sequence[Any]]] = {}
    for user, (x_raw, y_raw) in users.items():
        x = np.asarray(x_raw, dtype=np.float64)
        y = np.asarray(y_raw, dtype=np.int64).reshape(-1)
        if x.size % _PIXELS or x.size // _PIXELS != len(y):
            raise ValueError(f"user {user!r}: x has shape {x.shape}, need ({len(y)}, {_PIXELS})")
        x = x.reshape(len(y), _PIXELS)
        names.append(user)
        counts.append(len(y))
        user_data[user] = {"x": x.tolist(), "y": y.tolist()}
    doc = {"users": names, "num_samples": counts, "user_data": user_data}
    Path(path).write_text(json.dumps(doc), encoding="utf-8")
