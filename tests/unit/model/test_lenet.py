"""init_lenet5: MindSpore's LeNet5 names/shapes and PyTorch-default initialisation bounds."""

import math

import numpy as np
import pytest

from mindfed.model.lenet import LENET5_NAMES, init_lenet5, lenet5_shapes


def test_names_and_shapes_match_mindspore_lenet5():
    weights = init_lenet5(num_class=62, num_channel=3)

    assert tuple(weights.names) == LENET5_NAMES
    assert weights.shapes == {
        "conv1.weight": (6, 3, 5, 5),
        "conv2.weight": (16, 6, 5, 5),
        "fc1.bias": (120,),
        "fc1.weight": (120, 400),
        "fc2.bias": (84,),
        "fc2.weight": (84, 120),
        "fc3.bias": (62,),
        "fc3.weight": (62, 84),
    }
    assert all(weights.require_aggr.values())


def test_values_lie_within_one_over_sqrt_fan_in_and_fill_the_range():
    weights = init_lenet5()

    fan_ins = {"conv1": 25, "conv2": 150, "fc1": 400, "fc2": 120, "fc3": 84}
    for name, tensor in weights.items():
        bound = 1 / math.sqrt(fan_ins[name.split(".")[0]])
        assert np.abs(tensor).max() <= bound, name
        if tensor.size >= 100:
            assert np.abs(tensor).max() > 0.9 * bound, name  # uniform over the whole range, not a narrower one
            assert abs(float(tensor.mean())) < 0.1 * bound, name


def test_seed_makes_it_deterministic():
    assert init_lenet5(seed=3).equal(init_lenet5(seed=3))
    assert not init_lenet5(seed=3).equal(init_lenet5(seed=4))


def test_invalid_sizes_are_refused():
    with pytest.raises(ValueError, match="num_class"):
        lenet5_shapes(num_class=0)
    with pytest.raises(ValueError, match="num_channel"):
        init_lenet5(num_channel=0)
