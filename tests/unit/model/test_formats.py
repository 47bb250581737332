"""load_weights: suffix dispatch and what each format keeps."""

import numpy as np
import pytest

from mindfed.errors import ModelFormatError
from mindfed.model.ckpt import write_ckpt
from mindfed.model.formats import SUPPORTED_SUFFIXES, is_optimizer_state, load_weights, save_safetensors
from mindfed.model.lenet import LENET5_NAMES, init_lenet5


def test_ckpt_keeps_float32_model_weights_only(tmp_path):
    # Prepare: a training checkpoint like the seed's Lenet.ckpt, with optimizer state and a non-float32 param
    lenet = init_lenet5(62, 3)
    tensors = dict(lenet.items())
    tensors.update(
        {
            "moments.fc1.weight": np.zeros((120, 400), np.float32),
            "accum.fc1.bias": np.zeros(120, np.float32),
            "learning_rate": np.array(0.01, np.float32),
            "momentum": np.array(0.9, np.float32),
            "global_step": np.array([3], np.int32),
            "fp16.extra": np.ones(3, np.float16),
        }
    )
    path = tmp_path / "Lenet.ckpt"
    write_ckpt(path, tensors)

    # Execute
    weights = load_weights(path)

    # Assert
    assert tuple(weights.names) == LENET5_NAMES
    assert weights.equal(lenet)


def test_optimizer_state_names():
    assert is_optimizer_state("moments.conv1.weight")
    assert is_optimizer_state("global_step")
    assert is_optimizer_state("accum.fc3.bias")
    assert is_optimizer_state("learning_rate")
    assert not is_optimizer_state("conv1.weight")
    assert not is_optimizer_state("momentum_encoder.weight")


def test_safetensors_and_npz_keep_float_tensors_as_float32(tmp_path):
    # Prepare
    tensors = {"w": np.ones((2, 2), np.float16), "b": np.arange(3, dtype=np.float64), "ids": np.arange(3)}
    save_safetensors(tmp_path / "m.safetensors", tensors)
    np.savez(tmp_path / "m.npz", **tensors)

    for name in ("m.safetensors", "m.npz"):
        # Execute
        weights = load_weights(tmp_path / name)

        # Assert
        assert weights.names == ["b", "w"], name
        assert weights["w"].dtype == np.float32
        np.testing.assert_array_equal(weights["b"], [0, 1, 2])


def test_torch_state_dict_suffixes(tmp_path):
    torch = pytest.importorskip("torch")
    state = torch.nn.Linear(3, 2).state_dict()
    for suffix in (".pt", ".pth", ".bin"):
        torch.save(state, tmp_path / f"m{suffix}")

        weights = load_weights(tmp_path / f"m{suffix}")

        assert weights.names == ["bias", "weight"]
        np.testing.assert_array_equal(weights["weight"], state["weight"].numpy())


def test_suffix_is_case_insensitive(tmp_path):
    write_ckpt(tmp_path / "M.CKPT", {"w": np.ones(2, np.float32)})

    assert load_weights(tmp_path / "M.CKPT").names == ["w"]


def test_unknown_suffix_lists_supported_ones(tmp_path):
    with pytest.raises(ModelFormatError, match=r"'\.onnx'.*\.ckpt, \.mindir, \.safetensors, \.npz, \.pt, \.pth, \.bin"):
        load_weights(tmp_path / "m.onnx")
    assert SUPPORTED_SUFFIXES == (".ckpt", ".mindir", ".safetensors", ".npz", ".pt", ".pth", ".bin")


def test_file_without_float_weights_is_refused(tmp_path):
    write_ckpt(tmp_path / "ints.ckpt", {"global_step": np.array([1], np.int32), "n": np.array([2], np.int64)})

    with pytest.raises(ModelFormatError, match="no float32"):
        load_weights(tmp_path / "ints.ckpt")


def test_non_finite_or_empty_weights_become_model_format_error(tmp_path):
    write_ckpt(tmp_path / "nan.ckpt", {"w": np.array([np.nan], np.float32)})
    np.savez(tmp_path / "empty.npz", w=np.zeros((0, 2), np.float32))

    with pytest.raises(ModelFormatError, match=r"nan\.ckpt.*NaN"):
        load_weights(tmp_path / "nan.ckpt")
    with pytest.raises(ModelFormatError, match="no elements"):
        load_weights(tmp_path / "empty.npz")


def test_npz_never_unpickles(tmp_path):
    np.savez(tmp_path / "obj.npz", w=np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "single.npy", np.ones(2))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")

    with pytest.raises(ModelFormatError, match="obj.npz"):
        load_weights(tmp_path / "obj.npz")
    with pytest.raises(ModelFormatError, match="single array"):
        load_weights(tmp_path / "single.npz")
    with pytest.raises(ModelFormatError, match="missing.npz"):
        load_weights(tmp_path / "missing.npz")


def test_model_package_never_imports_torch():
    # Server code must not depend on torch; a fresh interpreter shows what importing the package pulls in.
    import subprocess
    import sys
    from pathlib import Path

    python_root = Path(__file__).resolve().parents[3] / "python"
    code = "import sys, mindfed.model.formats, mindfed.model.recovery; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(python_root)}
    )

    assert result.stdout.strip() == "False"
