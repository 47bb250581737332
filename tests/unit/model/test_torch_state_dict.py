"""Reading torch.save'd state dicts without torch: real torch files, strided views, and refused pickles."""

import pickle
import zipfile

import numpy as np
import pytest

from mindfed.errors import ModelFormatError
from mindfed.model.torch_state_dict import read_torch_state_dict


def test_reads_real_state_dict_with_views_and_skips_non_float(tmp_path):
    # Prepare
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = model.state_dict()
    state["view.offset_strided"] = base[1:, ::2]  # storage offset 6, strides (6, 2), shares base's storage
    state["view.transposed"] = base.t()
    state["base"] = base
    state["half"] = torch.tensor([1.5, -0.25], dtype=torch.float16)
    state["bf16"] = torch.tensor([3.0, -0.5], dtype=torch.bfloat16)
    state["double"] = torch.tensor([[1e-3]], dtype=torch.float64)
    state["scalar"] = torch.tensor(2.5)
    state["param"] = torch.nn.Parameter(torch.ones(2, 2))
    path = tmp_path / "model.pt"
    torch.save(state, path)

    # Execute
    loaded = read_torch_state_dict(path)

    # Assert
    expected = {name: t.detach().to(torch.float32).numpy() for name, t in state.items() if t.is_floating_point()}
    assert list(loaded) == list(expected)
    assert "1.num_batches_tracked" not in loaded  # int64
    for name, array in expected.items():
        assert loaded[name].dtype == np.float32
        assert loaded[name].flags.c_contiguous
        assert loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)


def test_legacy_format_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "old.pth"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)

    with pytest.raises(ModelFormatError, match="not a readable torch zip"):
        read_torch_state_dict(path)


def _torch_like_zip(path, payload: bytes, storages: dict[str, bytes] | None = None) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    # Prepare: a state dict whose value would call os.system when unpickled by plain pickle
    path = tmp_path / "evil.pt"
    _torch_like_zip(path, pickle.dumps({"w": _Exploit()}, protocol=2))

    # Execute / Assert
    with pytest.raises(ModelFormatError, match=r"refusing global (posix|os|nt)\.system"):
        read_torch_state_dict(path)


def test_builtins_eval_is_refused(tmp_path):
    payload = b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R."
    path = tmp_path / "eval.pt"
    _torch_like_zip(path, payload)

    with pytest.raises(ModelFormatError, match="refusing global builtins.eval"):
        read_torch_state_dict(path)


def _forged_payload(numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    """data.pkl bytes for {'w': _rebuild_tensor_v2(storage(numel), offset, size, stride, False, OrderedDict())}."""
    persistent = (
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
        + b"J"
        + numel.to_bytes(4, "little")
        + b"tQ"
    )

    def tup(values):
        return b"(" + b"".join(b"J" + v.to_bytes(4, "little", signed=True) for v in values) + b"t"

    return (
        b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("
        + persistent
        + b"J"
        + offset.to_bytes(4, "little", signed=True)
        + tup(size)
        + tup(stride)
        + b"\x89ccollections\nOrderedDict\n)Rt"
        + b"Rs."
    )


def test_forged_valid_geometry_reads(tmp_path):
    path = tmp_path / "ok.pt"
    _torch_like_zip(path, _forged_payload(6, 1, (2, 2), (3, 1)), {"0": np.arange(6, dtype="<f4").tobytes()})

    assert read_torch_state_dict(path)["w"].tolist() == [[1.0, 2.0], [4.0, 5.0]]


@pytest.mark.parametrize(
    ("numel", "offset", "size", "stride", "storage_bytes", "message"),
    [
        (6, 1, (2, 3), (3, 1), 24, "reaches element 6"),
        (6, 0, (2,), (-1,), 24, "bad tensor geometry"),
        (6, 0, (2,), (1,), 20, "has 20 bytes"),
    ],
)
def test_forged_out_of_bounds_tensors_are_refused(tmp_path, numel, offset, size, stride, storage_bytes, message):
    path = tmp_path / "forged.pt"
    _torch_like_zip(path, _forged_payload(numel, offset, size, stride), {"0": b"\x00" * storage_bytes})

    with pytest.raises(ModelFormatError, match=message):
        read_torch_state_dict(path)


def test_not_a_zip_and_not_a_dict(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"not a zip at all")
    with pytest.raises(ModelFormatError, match="not a readable torch zip"):
        read_torch_state_dict(tmp_path / "junk.bin")

    _torch_like_zip(tmp_path / "list.pt", pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ModelFormatError, match="top level is list"):
        read_torch_state_dict(tmp_path / "list.pt")

    with zipfile.ZipFile(tmp_path / "empty.pt", "w") as archive:
        archive.writestr("other.txt", "x")
    with pytest.raises(ModelFormatError, match="data.pkl"):
        read_torch_state_dict(tmp_path / "empty.pt")
