"""MindSpore Federated's `FeatureMap` and the conversion of every `feature_map` form of spec §1.2 to ModelWeights."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mindfed.api.errors import JobConfigError, JobTypeError, JobValueError
from mindfed.api.params import check_str
from mindfed.errors import ModelFormatError
from mindfed.model.weights import ModelWeights

logger = logging.getLogger(__name__)

# The LeNet-5 of MindSpore's FEMNIST example (62 classes, 3 channels), as `mindfed.cli.server_process` defaults to.
DEFAULT_NUM_CLASSES, DEFAULT_NUM_CHANNELS = 62, 3

BAD_SUFFIX = ("The value of parameter 'feature_map' is expected to be checkpoint file path, ends with '.ckpt', or "
              "MindIR file path, ends with '.mindir', when the type of parameter 'feature_map' is str.")
BAD_TYPE = ("The parameter 'feature_map' is expected to be instance of dict(feature_name, feature_val), FeatureMap, "
            "or a checkpoint or mindir file path, but got '{}'")


class FeatureItem:
    """One named float32 tensor and whether it is aggregated (MindSpore's `FeatureItem`).

    Raises:
        JobTypeError: `data` is not a numpy.ndarray, or `feature_name` not a str.
        JobValueError: `data` is not float32 or has no elements; `feature_name` is empty.
    """

    def __init__(self, feature_name: str, data: np.ndarray, require_aggr: bool = True) -> None:
        check_str("feature_name", feature_name)
        if not isinstance(data, np.ndarray):
            raise JobTypeError("The type of parameter 'data' is expected to be instance of numpy.ndarray")
        if data.dtype != np.float32:
            raise JobValueError(f"The value type of parameter 'data' is expected to be float32, but got {data.dtype}")
        if data.size == 0:
            raise JobValueError("The value size of parameter 'data' is expected to > 0")
        self.feature_name = feature_name
        # not np.ascontiguousarray: it turns a 0-d scalar feature into shape (1,)
        self.data = data if data.flags.c_contiguous else np.array(data, order="C")
        self.require_aggr = bool(require_aggr)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape


class FeatureMap:
    """An ordered set of FeatureItems: the initial model of an FLServerJob."""

    def __init__(self) -> None:
        self._items: dict[str, FeatureItem] = {}

    def add_feature(self, feature_name: str, tensor: np.ndarray, require_aggr: bool = True) -> FeatureItem:
        """Adds (or replaces) one feature.

        Args:
            feature_name: the parameter name devices use.
            tensor: float32 numpy array with at least one element (a 0-d scalar is fine).
            require_aggr: False keeps the feature out of aggregation and getModel; it is still sent in startFLJob
                and kept in checkpoints (spec §1.2).

        Raises:
            JobTypeError, JobValueError: as FeatureItem.
        """
        item = FeatureItem(feature_name, tensor, require_aggr)
        self._items[feature_name] = item
        return item

    def feature_map(self) -> dict[str, FeatureItem]:
        """name -> FeatureItem (MindSpore's accessor)."""
        return self._items

    def to_weights(self) -> ModelWeights:
        """The server's ModelWeights of these features, with their require_aggr flags.

        Raises:
            JobValueError: the map is empty, or a value ModelWeights refuses (NaN or inf).
        """
        if not self._items:
            raise JobValueError("The parameter 'feature_map' holds no feature")
        try:
            return ModelWeights({n: i.data for n, i in self._items.items()},
                                require_aggr={n: i.require_aggr for n, i in self._items.items()})
        except ValueError as exc:
            raise JobValueError(f"The parameter 'feature_map' is invalid: {exc}") from exc

    @classmethod
    def from_weights(cls, weights: ModelWeights) -> FeatureMap:
        """A FeatureMap of a server model (copies, so a callback can keep or change it)."""
        fm = cls()
        for name, tensor in weights.items():
            fm.add_feature(name, np.array(tensor, dtype=np.float32), weights.require_aggr[name])
        return fm

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"FeatureMap({', '.join(f'{n}{list(i.shape)}' for n, i in self._items.items())})"


def is_empty_map(feature_map: object) -> bool:
    """An empty FeatureMap or dict: a server with no feature, which only the running cluster can refuse (§13)."""
    return isinstance(feature_map, FeatureMap | Mapping) and len(feature_map) == 0


def to_model_weights(feature_map: object) -> ModelWeights:
    """Converts any `feature_map` that `FLServerJob.run` accepts (spec §1.2).

    Args:
        feature_map: None (a LeNet-5(62 classes, 3 channels) initialised in numpy); a dict name -> float32 array
            (all aggregated); a FeatureMap; a ModelWeights; or a path: `.ckpt` (float32 parameters only, optimizer
            state skipped), `.mindir` (the float32 parameters of its main graph, see `mindfed.model.mindir`), or
            another format `mindfed.model.formats` reads (`.npz`, `.safetensors`, torch state dicts).

    Raises:
        JobTypeError: a type none of the above.
        JobValueError: a dict value that is not a non-empty float32 array; an empty map.
        JobConfigError: a path with an unsupported suffix, or a file that cannot be read (the message says what is
            missing or unsupported: an encrypted or externally stored MindIR, no float32 parameter, ...).
    """
    if feature_map is None:
        from mindfed.model.lenet import init_lenet5  # noqa: PLC0415 - only needed without a model

        return init_lenet5(DEFAULT_NUM_CLASSES, DEFAULT_NUM_CHANNELS)
    if isinstance(feature_map, ModelWeights):
        return feature_map
    if isinstance(feature_map, FeatureMap):
        return feature_map.to_weights()
    if isinstance(feature_map, Mapping):
        fm = FeatureMap()
        for name, value in feature_map.items():
            fm.add_feature(name, value, require_aggr=True)
        return fm.to_weights()
    if isinstance(feature_map, str | os.PathLike):
        return _load_file(Path(feature_map))
    raise JobTypeError(BAD_TYPE.format(type(feature_map)))


def _load_file(path: Path) -> ModelWeights:
    from mindfed.model.formats import SUPPORTED_SUFFIXES, load_weights  # noqa: PLC0415 - file formats on demand

    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise JobConfigError(f"{BAD_SUFFIX} Got {str(path)!r}; mindfed also reads {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        weights = load_weights(path)
    except (ModelFormatError, OSError) as exc:
        raise JobConfigError(f"Failed to load feature_map {str(path)!r}: {exc}") from exc
    logger.info("feature_map %s: %d float32 parameters", path, len(weights))
    return weights
