"""ModelWeights: the server's immutable, name-ordered set of float32 tensors plus their require_aggr flags."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

# Integer inputs are accepted because MindSpore's FeatureMap casts them too; bool and complex are not numbers we
# can average, and object arrays could hide anything.
_CONVERTIBLE_KINDS = frozenset("fiu")


def _owned_float32(name: str, value: Any) -> np.ndarray:
    """Returns a fresh, read-only, C-contiguous float32 copy of `value`, after validating it.

    Raises:
        ValueError: `value` is not a real numeric array, is empty, or holds NaN/inf (after the float32 cast).
    """
    array = np.asarray(value)
    if array.dtype.kind not in _CONVERTIBLE_KINDS:
        raise ValueError(f"weight {name!r}: dtype {array.dtype} cannot be converted to float32")
    if array.size == 0:
        raise ValueError(f"weight {name!r}: shape {array.shape} has no elements")
    with np.errstate(over="ignore"):  # an overflow becomes inf, which the check below reports by name
        owned = np.array(array, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(owned).all():
        raise ValueError(f"weight {name!r}: holds NaN or inf (after the float32 cast)")
    # Read-only so that replace() and copy-free views can share tensors between ModelWeights safely.
    owned.setflags(write=False)
    return owned


class ModelWeights(Mapping[str, np.ndarray]):
    """A model as the FL server sees it: name -> float32 tensor (shape kept), iterated in name order.

    MindSpore devices send and expect weights ordered by name, so every view of this class (iteration,
    `names`, `items()`, `model_info()`) is sorted by name. Tensors are owned, C-contiguous, float32 and
    read-only: new values go through `replace()`, which returns a new object.

    Attributes:
        require_aggr: name -> whether the tensor takes part in aggregation (spec §1.2; default True).
    """

    __slots__ = ("_tensors", "require_aggr")

    def __init__(self, tensors: Mapping[str, np.ndarray], require_aggr: Mapping[str, bool] | None = None) -> None:
        """Validates and copies `tensors`.

        Args:
            tensors: name -> array; any real numeric dtype, converted to float32. Must not be empty.
            require_aggr: name -> flag for some or all names; missing names default to True.

        Raises:
            ValueError: no tensors, a name that is not a non-empty str, an empty or non-finite or non-numeric
                tensor, or a `require_aggr` name that is not a tensor.
        """
        if not tensors:
            raise ValueError("a model needs at least one weight")
        owned: dict[str, np.ndarray] = {}
        for name in sorted(tensors):
            if not isinstance(name, str) or not name:
                raise ValueError(f"weight names must be non-empty strings, got {name!r}")
            owned[name] = _owned_float32(name, tensors[name])
        flags = dict(require_aggr or {})
        unknown = sorted(set(flags) - set(owned))
        if unknown:
            raise ValueError(f"require_aggr names weights that do not exist: {unknown}")
        self._tensors = owned
        self.require_aggr: dict[str, bool] = {name: bool(flags.get(name, True)) for name in owned}

    @classmethod
    def _trusted(cls, tensors: dict[str, np.ndarray], require_aggr: dict[str, bool]) -> ModelWeights:
        """Builds from already-validated, read-only float32 tensors without copying them."""
        weights = cls.__new__(cls)
        weights._tensors = {name: tensors[name] for name in sorted(tensors)}
        weights.require_aggr = {name: require_aggr[name] for name in weights._tensors}
        return weights

    # Mapping protocol -------------------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> np.ndarray:
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __eq__(self, other: object) -> bool:
        # Mapping.__eq__ would compare arrays with ==, whose truth value is ambiguous.
        if not isinstance(other, ModelWeights):
            return NotImplemented
        return self.equal(other)

    __hash__ = None  # type: ignore[assignment]  # mutable flags; equality is by value

    def __repr__(self) -> str:
        return f"ModelWeights({len(self)} tensors, {self.total_floats} floats)"

    # Descriptions -----------------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """Weight names, sorted (the order MindSpore uses on the wire)."""
        return list(self._tensors)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """name -> shape, in name order."""
        return {name: tensor.shape for name, tensor in self._tensors.items()}

    @property
    def sizes(self) -> dict[str, int]:
        """name -> number of elements, in name order."""
        return {name: int(tensor.size) for name, tensor in self._tensors.items()}

    @property
    def total_floats(self) -> int:
        """Number of float32 elements over all tensors."""
        return sum(int(tensor.size) for tensor in self._tensors.values())

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data over all tensors (4 per element)."""
        return sum(int(tensor.nbytes) for tensor in self._tensors.values())

    @property
    def aggregated_names(self) -> list[str]:
        """Sorted names whose `require_aggr` flag is True."""
        return [name for name in self._tensors if self.require_aggr[name]]

    def flat(self, name: str) -> np.ndarray:
        """Returns the tensor `name` as a read-only 1-D view (no copy).

        Raises:
            KeyError: no weight has this name.
        """
        return self._tensors[name].reshape(-1)

    def model_info(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Returns the ModelInfo JSON object servers publish and compare at startup (spec §5.1, §13).

        Returns:
            `{"features": {name: {"size": bytes, "type": "fp32", "require_aggr": bool, "shape": [...]}}}`.
        """
        features = {
            name: {
                "size": int(tensor.nbytes),
                "type": "fp32",
                "require_aggr": self.require_aggr[name],
                "shape": [int(dim) for dim in tensor.shape],
            }
            for name, tensor in self._tensors.items()
        }
        return {"features": features}

    # Derivations ------------------------------------------------------------------------------------------------

    def copy(self) -> ModelWeights:
        """Returns a deep copy: its tensors share no memory with this object's."""
        tensors = {name: tensor.copy() for name, tensor in self._tensors.items()}
        for tensor in tensors.values():
            tensor.setflags(write=False)
        return ModelWeights._trusted(tensors, dict(self.require_aggr))

    def replace(self, updates: Mapping[str, np.ndarray]) -> ModelWeights:
        """Returns a new ModelWeights with some tensors' values replaced; unchanged tensors are shared.

        Args:
            updates: name -> new values; every name must exist and every shape must match (a scalar shape
                `()` and `(1,)` are different shapes). Converted to float32 and copied.

        Raises:
            KeyError: an update names a weight that does not exist.
            ValueError: a shape differs, or a value is non-finite or not numeric.
        """
        tensors = dict(self._tensors)
        for name, value in updates.items():
            if name not in tensors:
                raise KeyError(f"cannot replace weight {name!r}: the model has no such weight")
            new = _owned_float32(name, value)
            if new.shape != tensors[name].shape:
                raise ValueError(f"weight {name!r}: new shape {new.shape} != model shape {tensors[name].shape}")
            tensors[name] = new
        return ModelWeights._trusted(tensors, dict(self.require_aggr))

    def replace_owned(self, updates: Mapping[str, np.ndarray]) -> ModelWeights:
        """Like `replace`, but takes ownership of the given arrays instead of copying them (for 40 MB aggregates).

        Args:
            updates: name -> C-contiguous float32 array of the weight's shape that nobody else will write to;
                it is made read-only here.

        Raises:
            KeyError: an update names a weight that does not exist.
            ValueError: wrong dtype, layout or shape, or a non-finite value.
        """
        tensors = dict(self._tensors)
        for name, value in updates.items():
            if name not in tensors:
                raise KeyError(f"cannot replace weight {name!r}: the model has no such weight")
            if value.dtype != np.float32 or not value.flags.c_contiguous or value.shape != tensors[name].shape:
                raise ValueError(f"weight {name!r}: needs a C-contiguous float32 array of shape {tensors[name].shape}")
            if not np.isfinite(value).all():  # numpy, not _core: mindfed.model stays importable from source
                raise ValueError(f"weight {name!r}: holds NaN or inf")
            value.setflags(write=False)
            tensors[name] = value
        return ModelWeights._trusted(tensors, dict(self.require_aggr))

    def equal(self, other: ModelWeights, atol: float = 0.0) -> bool:
        """Whether both have the same names, shapes, require_aggr flags, and values within `atol`.

        Args:
            other: the weights to compare with.
            atol: largest absolute difference allowed per element (0 means bit-equal values).
        """
        if not math.isfinite(atol) or atol < 0:
            raise ValueError(f"atol must be finite and >= 0, got {atol}")
        if self.shapes != other.shapes or self.require_aggr != other.require_aggr:
            return False
        for name, tensor in self._tensors.items():
            diff = np.abs(tensor.astype(np.float64) - other[name].astype(np.float64))
            if diff.size and float(diff.max()) > atol:
                return False
        return True
