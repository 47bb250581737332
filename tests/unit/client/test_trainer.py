"""LeNet5 (MindSpore names) and local training/evaluation with numpy weights in and out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mindfed.client.lenet_torch import LeNet5, init_lenet_weights, lenet_shapes
from mindfed.client.trainer import evaluate, train_local, unflatten
from mindfed.data.device_data import DeviceData

_MINDSPORE_LENET = {
    "conv1.weight": (6, 1, 5, 5),
    "conv2.weight": (16, 6, 5, 5),
    "fc1.weight": (120, 400),
    "fc1.bias": (120,),
    "fc2.weight": (84, 120),
    "fc2.bias": (84,),
    "fc3.weight": (10, 84),
    "fc3.bias": (10,),
}


def _stripes(n: int, seed: int) -> DeviceData:
    """Three classes that differ only in which horizontal band is bright, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 1, 32, 32)).astype(np.float32) * 0.2
    for i, label in enumerate(y):
        x[i, 0, 4 + 8 * label: 12 + 8 * label] += 0.8
    return DeviceData(x=x, y=y.astype(np.int64))


def test_lenet_has_mindspore_names_shapes_and_order() -> None:
    # Execute
    state = LeNet5(num_class=10, num_channel=1).state_dict()

    # Assert
    assert [(k, tuple(v.shape)) for k, v in state.items()] == list(_MINDSPORE_LENET.items())
    assert lenet_shapes(10, 1) == _MINDSPORE_LENET
    assert lenet_shapes(62, 3)["conv1.weight"] == (6, 3, 5, 5)
    assert lenet_shapes(62, 3)["fc3.bias"] == (62,)


def test_lenet_maps_32x32_batch_to_logits() -> None:
    with torch.inference_mode():
        logits = LeNet5(num_class=62, num_channel=1)(torch.zeros(5, 1, 32, 32))
    assert logits.shape == (5, 62)


def test_init_weights_are_seeded_and_leave_global_rng_alone() -> None:
    # Prepare
    before = torch.random.get_rng_state()

    # Execute
    a, b, c = init_lenet_weights(seed=1), init_lenet_weights(seed=1), init_lenet_weights(seed=2)

    # Assert
    assert torch.equal(before, torch.random.get_rng_state())
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["fc1.weight"], c["fc1.weight"])


def test_training_lowers_loss_and_returns_float32_weights_of_same_shapes() -> None:
    # Prepare
    data, weights = _stripes(96, seed=0), init_lenet_weights(num_class=3, seed=0)
    _, loss_before = evaluate(weights, data, num_class=3)

    # Execute
    result = train_local(weights, data, epochs=4, batch_size=16, lr=0.05, seed=0, num_class=3)

    # Assert
    accuracy_after, loss_after = evaluate(result.weights, data, num_class=3)
    assert loss_after < 0.5 * loss_before
    assert accuracy_after >= 0.9
    assert result.num_samples == 96
    assert 0.0 <= result.accuracy <= 1.0
    assert result.loss > 0.0
    assert {k: (v.dtype, v.shape) for k, v in result.weights.items()} == {
        k: (np.dtype(np.float32), v.shape) for k, v in weights.items()}


def test_training_is_deterministic_for_a_seed_and_leaves_inputs_and_global_rng_untouched() -> None:
    # Prepare
    data, weights = _stripes(40, seed=1), init_lenet_weights(num_class=3, seed=1)
    original = {k: v.copy() for k, v in weights.items()}
    rng_before = torch.random.get_rng_state()

    # Execute
    first = train_local(weights, data, epochs=1, batch_size=8, lr=0.05, seed=3, num_class=3)
    again = train_local(weights, data, epochs=1, batch_size=8, lr=0.05, seed=3, num_class=3)
    other = train_local(weights, data, epochs=1, batch_size=8, lr=0.05, seed=4, num_class=3)

    # Assert
    assert all(np.array_equal(weights[k], original[k]) for k in weights)
    assert torch.equal(rng_before, torch.random.get_rng_state())
    assert all(np.array_equal(first.weights[k], again.weights[k]) for k in weights)
    assert not np.array_equal(first.weights["fc3.weight"], other.weights["fc3.weight"])


def test_evaluate_constant_model_scores_exactly() -> None:
    # Prepare: zero weights and a bias favouring class 1 make every logit row equal the bias.
    weights = {k: np.zeros(s, dtype=np.float32) for k, s in lenet_shapes(3, 1).items()}
    weights["fc3.bias"] = np.array([0.0, 2.0, 0.0], dtype=np.float32)
    data = DeviceData(x=np.random.default_rng(0).random((4, 1, 32, 32), dtype=np.float32),
                      y=np.array([1, 1, 1, 0], dtype=np.int64))
    log_p = np.log(np.exp([0.0, 2.0, 0.0]) / np.exp([0.0, 2.0, 0.0]).sum())

    # Execute
    accuracy, loss = evaluate(weights, data, num_class=3)

    # Assert
    assert accuracy == 0.75
    assert loss == pytest.approx(-(3 * log_p[1] + log_p[0]) / 4, rel=1e-5)


def test_flat_read_only_weights_round_trip() -> None:
    # Prepare: what the server sends, flat float32 vectors from a request body (read-only).
    weights = init_lenet_weights(seed=0)
    flat = {k: np.frombuffer(v.tobytes(), dtype=np.float32) for k, v in weights.items()}

    # Execute
    shaped = unflatten(flat, lenet_shapes())
    accuracy_flat, loss_flat = evaluate(flat, _stripes(8, 0))
    accuracy_shaped, loss_shaped = evaluate(weights, _stripes(8, 0))

    # Assert
    assert all(shaped[k].dtype == np.float32 and np.array_equal(shaped[k], weights[k]) for k in weights)
    assert (accuracy_flat, loss_flat) == (accuracy_shaped, loss_shaped)


def test_wrong_weights_and_arguments_raise() -> None:
    # Prepare
    weights = init_lenet_weights(seed=0)
    data = _stripes(4, 0)

    # Execute / Assert
    with pytest.raises(ValueError, match="missing \\['fc3.bias'\\]"):
        unflatten({k: v for k, v in weights.items() if k != "fc3.bias"}, lenet_shapes())
    with pytest.raises(ValueError, match="fc3.weight: 840 values do not fill shape \\(62, 84\\)"):
        evaluate(weights, data, num_class=62)
    with pytest.raises(ValueError, match="epochs"):
        train_local(weights, data, epochs=0, batch_size=4, lr=0.1)
