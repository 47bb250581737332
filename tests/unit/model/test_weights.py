"""ModelWeights: validation, name order, derived descriptions, immutability and replace()."""

import numpy as np
import pytest

from mindfed.model.weights import ModelWeights


def _sample() -> ModelWeights:
    return ModelWeights(
        {"b": np.arange(6, dtype=np.float64).reshape(2, 3), "a": np.float32(1.5), "c": [1, 2]},
        require_aggr={"c": False},
    )


def test_names_are_sorted_and_tensors_float32_contiguous():
    # Execute
    weights = _sample()

    # Assert
    assert weights.names == ["a", "b", "c"]
    assert list(weights) == ["a", "b", "c"]
    assert [name for name, _ in weights.items()] == ["a", "b", "c"]
    for _, tensor in weights.items():
        assert tensor.dtype == np.float32
        assert tensor.flags.c_contiguous
    assert weights.shapes == {"a": (), "b": (2, 3), "c": (2,)}
    assert weights.sizes == {"a": 1, "b": 6, "c": 2}
    assert weights.total_floats == 9
    assert weights.nbytes == 36


def test_input_is_copied_and_tensors_are_read_only():
    # Prepare
    source = np.ones((2, 2), dtype=np.float32)
    weights = ModelWeights({"w": source})

    # Execute
    source[0, 0] = 7.0

    # Assert
    assert weights["w"][0, 0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        weights["w"][0, 0] = 3.0
    with pytest.raises(ValueError, match="read-only"):
        weights.flat("w")[0] = 3.0


def test_require_aggr_defaults_true_and_aggregated_names_follow_it():
    weights = _sample()

    assert weights.require_aggr == {"a": True, "b": True, "c": False}
    assert weights.aggregated_names == ["a", "b"]


@pytest.mark.parametrize(
    ("tensors", "flags", "message"),
    [
        ({}, None, "at least one"),
        ({"w": np.zeros((0, 3))}, None, "no elements"),
        ({"w": np.array([1.0, np.nan])}, None, "NaN or inf"),
        ({"w": np.array([1e300])}, None, "NaN or inf"),  # overflows float32
        ({"w": np.array([True])}, None, "cannot be converted"),
        ({"w": np.array(["x"])}, None, "cannot be converted"),
        ({"w": np.array([1 + 2j])}, None, "cannot be converted"),
        ({"": np.ones(1)}, None, "non-empty strings"),
        ({"w": np.ones(1)}, {"v": True}, "do not exist"),
    ],
)
def test_invalid_input_is_refused(tensors, flags, message):
    with pytest.raises(ValueError, match=message):
        ModelWeights(tensors, flags)


def test_flat_is_a_one_dimensional_view():
    weights = _sample()

    flat = weights.flat("b")

    assert flat.shape == (6,)
    assert np.shares_memory(flat, weights["b"])
    np.testing.assert_array_equal(flat, np.arange(6, dtype=np.float32))
    assert weights.flat("a").shape == (1,)


def test_model_info_matches_spec_json_shape():
    info = _sample().model_info()

    assert list(info["features"]) == ["a", "b", "c"]
    assert info["features"]["b"] == {"size": 24, "type": "fp32", "require_aggr": True, "shape": [2, 3]}
    assert info["features"]["a"] == {"size": 4, "type": "fp32", "require_aggr": True, "shape": []}
    assert info["features"]["c"]["require_aggr"] is False


def test_replace_returns_new_object_and_shares_unchanged_tensors():
    # Prepare
    weights = _sample()

    # Execute
    replaced = weights.replace({"b": np.full((2, 3), 9.0)})

    # Assert
    assert replaced is not weights
    np.testing.assert_array_equal(weights["b"], np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(replaced["b"], np.full((2, 3), 9.0, dtype=np.float32))
    assert replaced["a"] is weights["a"]
    assert replaced.require_aggr == weights.require_aggr
    assert replaced.require_aggr is not weights.require_aggr


def test_replace_checks_names_and_shapes():
    weights = _sample()

    with pytest.raises(KeyError, match="zzz"):
        weights.replace({"zzz": np.ones(1)})
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        weights.replace({"b": np.ones((3, 2))})
    with pytest.raises(ValueError, match="shape"):
        weights.replace({"a": np.ones(1)})  # () and (1,) differ
    with pytest.raises(ValueError, match="NaN"):
        weights.replace({"c": [np.inf, 0.0]})


def test_copy_is_deep_and_equal():
    weights = _sample()

    copied = weights.copy()

    assert copied.equal(weights)
    assert copied == weights
    for name in weights:
        assert not np.shares_memory(copied[name], weights[name])


def test_equal_compares_values_with_tolerance_shapes_and_flags():
    weights = _sample()
    nudged = weights.replace({"b": weights["b"] + 1e-3})

    assert not weights.equal(nudged)
    assert weights.equal(nudged, atol=2e-3)
    assert not weights.equal(ModelWeights(dict(weights.items())))  # flags differ
    assert not weights.equal(ModelWeights({"a": np.float32(1.5)}))
    assert weights != nudged
    with pytest.raises(ValueError, match="atol"):
        weights.equal(weights, atol=-1.0)
