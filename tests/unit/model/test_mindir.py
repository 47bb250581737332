"""MindIR reading, checked against ModelProto bytes assembled by hand from mind_ir.proto (spec §1.2, §13).

Field numbers (mindspore-ai/mindspore, mindspore/core/proto/mind_ir.proto): ModelProto{ir_version=1,
producer_name=2, model_version=5, graph=7, functions=8, little_endian=10, mind_ir_version=13};
GraphProto{node=1, name=2, parameter=3, input=5, output=6, map_parameter=10}; NodeProto{input=1, output=2, name=3,
op_type=4}; TensorProto{dims=1, data_type=2, float_data=3, name=7, raw_data=9, external_data=12,
compression_type=16}; TensorProto.DataType{FLOAT=1, INT32=6, FLOAT16=10}.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest

from mindfed.api.errors import JobConfigError
from mindfed.api.feature_map import to_model_weights
from mindfed.errors import ModelFormatError
from mindfed.model.mindir import read_mindir

FLOAT, INT32, FLOAT16 = 1, 6, 10


# --- an independent, deliberately naive protobuf writer (no code shared with mindfed) -----------------------------
def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = b""
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _vi(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _ld(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _s(field: int, text: str) -> bytes:
    return _ld(field, text.encode())


def _tensor(
    name: str | None,
    dims: list[int],
    data_type: int | None = FLOAT,
    raw: bytes | None = None,
    floats: list[float] | None = None,
    packed: bool = False,
    extra: bytes = b"",
) -> bytes:
    """A TensorProto as mindspore.export writes a parameter: dims, data_type, name, raw_data (or float_data)."""
    out = _ld(1, b"".join(_varint(d) for d in dims)) if packed else b"".join(_vi(1, d) for d in dims)
    if data_type is not None:
        out += _vi(2, data_type)
    if floats is not None:
        if packed:
            out += _ld(3, struct.pack(f"<{len(floats)}f", *floats))
        else:
            out += b"".join(_key(3, 5) + struct.pack("<f", f) for f in floats)
    if name is not None:
        out += _s(7, name)
    if raw is not None:
        out += _ld(9, raw)
    return out + extra


def _node(name: str, op_type: str, *inputs: str) -> bytes:
    """A NodeProto with an attribute holding a tensor: node contents must never be taken for parameters."""
    attr = _s(1, "shape") + _ld(12, _tensor("value0", [2], FLOAT, raw=struct.pack("<2f", 9, 9)))
    return b"".join(_s(1, i) for i in inputs) + _s(2, name) + _s(3, name) + _s(4, op_type) + _ld(5, attr)


def _graph(*parameters: bytes, name: str = "construct_wrapper.12", extra: bytes = b"") -> bytes:
    """A GraphProto: nodes first (as the exporter's field order does not matter), an input, parameters, an output."""
    nodes = _ld(1, _node(f"{name}:Conv2D:1", "REF::Conv2D:3", f"{name}:x", f"{name}:conv1.weight"))
    graph_input = _ld(5, _s(1, f"{name}:x") + _ld(2, _tensor(None, [1, 1, 4, 4], FLOAT)))
    output = _ld(6, _s(1, f"{name}:Conv2D:1") + _ld(2, _tensor(None, [1, 2], FLOAT)))
    return nodes + _s(2, name) + graph_input + b"".join(_ld(3, p) for p in parameters) + output + extra


def _model(graph: bytes | None, extra: bytes = b"", little_endian: bool | None = True) -> bytes:
    """A ModelProto with the fields BuildModelInfo sets, the graph, a sub-graph and a primitive."""
    out = _s(1, "0.1.1") + _s(2, "MindSpore") + _s(5, "2.2.0")
    if graph is not None:
        out += _ld(7, graph)
    out += _ld(8, _s(2, "sub_graph.3") + _ld(3, _tensor("sub_graph.3:ghost", [1], FLOAT, raw=b"\0" * 4)))
    if little_endian is not None:
        out += _vi(10, int(little_endian))
    out += _ld(12, _s(1, "Conv2D:3") + _s(2, "Conv2D")) + _vi(13, 1)
    return out + extra


def _write(tmp_path: Path, data: bytes, name: str = "lenet.mindir") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


WEIGHT = np.arange(24, dtype="<f4").reshape(2, 3, 2, 2) / 8 - 1
BIAS = np.array([0.5, -0.25], dtype="<f4")


def _lenet_graph() -> bytes:
    return _graph(
        _tensor("construct_wrapper.12:conv1.weight", [2, 3, 2, 2], raw=WEIGHT.tobytes()),
        _tensor("construct_wrapper.12:global_step", [1], INT32, raw=struct.pack("<i", 7)),
        _tensor("construct_wrapper.12:fc.bias", [2], raw=BIAS.tobytes(), packed=True),
        _tensor("construct_wrapper.12:half", [2], FLOAT16, raw=np.ones(2, "<f2").tobytes()),
        _tensor("construct_wrapper.12:scale", [], raw=struct.pack("<f", 3.0)),
    )


def test_reads_float32_parameters_of_the_main_graph(tmp_path, caplog):
    # Prepare
    path = _write(tmp_path, _model(_lenet_graph()))

    # Act
    with caplog.at_level(logging.INFO, logger="mindfed.model.mindir"):
        weights = read_mindir(path)

    # Assert: graph prefix dropped, non-float32 skipped, sub-graph and node tensors ignored, exact values
    assert weights.names == ["conv1.weight", "fc.bias", "scale"]
    assert weights["conv1.weight"].shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(weights["conv1.weight"], WEIGHT)
    np.testing.assert_array_equal(weights["fc.bias"], BIAS)
    assert weights["scale"].shape == ()
    assert weights["scale"] == np.float32(3.0)
    assert all(weights.require_aggr.values())
    assert "'global_step' of data_type INT32" in caplog.text
    assert "'half' of data_type FLOAT16" in caplog.text


def test_float_data_packed_and_unpacked_and_a_name_without_prefix(tmp_path):
    graph = _graph(
        _tensor("g:a", [3], floats=[1.0, 2.5, -4.0]),
        _tensor("g:b", [2, 1], floats=[0.125, 8.0], packed=True),
        _tensor("plain", [1], raw=struct.pack("<f", 1.5)),
    )

    weights = read_mindir(_write(tmp_path, _model(graph)))

    np.testing.assert_array_equal(weights["a"], np.array([1.0, 2.5, -4.0], np.float32))
    np.testing.assert_array_equal(weights["b"], np.array([[0.125], [8.0]], np.float32))
    np.testing.assert_array_equal(weights["plain"], np.array([1.5], np.float32))


def test_big_endian_raw_data_when_little_endian_is_false(tmp_path):
    graph = _graph(_tensor("g:w", [2], raw=np.array([1.5, -2.0], ">f4").tobytes()))

    weights = read_mindir(_write(tmp_path, _model(graph, little_endian=False)))

    np.testing.assert_array_equal(weights["w"], np.array([1.5, -2.0], np.float32))


def test_merged_graph_fields_and_skipped_map_parameter(tmp_path, caplog):
    # Two ModelProto.graph fields merge (protobuf semantics); a MapTensorProto is skipped with a warning
    first = _graph(_tensor("g:a", [1], raw=struct.pack("<f", 1.0)))
    second = _ld(3, _tensor("g:b", [1], raw=struct.pack("<f", 2.0))) + _ld(10, _s(1, "g:emb"))
    data = _model(first) + _ld(7, second)

    with caplog.at_level(logging.WARNING, logger="mindfed.model.mindir"):
        weights = read_mindir(_write(tmp_path, data))

    assert weights.names == ["a", "b"]
    assert "MapTensor" in caplog.text


def test_unknown_fields_are_skipped(tmp_path):
    tensor = _tensor("g:w", [1], raw=struct.pack("<f", 2.0), extra=_vi(13 + 100, 5) + _key(99, 1) + b"\0" * 8)
    data = _model(_graph(tensor, extra=_s(77, "future")), extra=_key(50, 5) + b"\1\2\3\4")

    assert read_mindir(_write(tmp_path, data))["w"] == np.float32(2.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (_model(_lenet_graph())[:-7], "truncated|claims"),
        (_model(_lenet_graph())[:200], "truncated|claims"),
        (_key(7, 0) + _varint(1), r"ModelProto.graph has wire type 0, expected 2"),
        (_ld(7, _key(3, 0) + _varint(1)), r"GraphProto.parameter has wire type 0, expected 2"),
        (_ld(7, _ld(3, _ld(2, b"\x01"))), r"TensorProto.data_type has wire type 2, expected 0"),
        (_ld(7, _ld(3, _s(7, "g:w") + _vi(2, FLOAT) + _vi(9, 1))), r"TensorProto.raw_data has wire type 0"),
        (_ld(7, _ld(3, _ld(3, b"\0\0\0"))), "packed float_data of 3 bytes"),
        (_ld(7, _ld(3, _ld(7, b"\xff\xfe"))), "not UTF-8"),
        (_key(1, 3), "wire type 3"),
        (bytes.fromhex("d85e3a7f") + b"\x10" * 40, "encrypted"),
        (bytes.fromhex("d95e3a7f") + b"\x10" * 40, "encrypted"),
        (_s(1, "0.1.1") + _s(2, "MindSpore"), "no graph"),
    ],
)
def test_malformed_files_are_refused(tmp_path, data, message):
    with pytest.raises(ModelFormatError, match=message) as info:
        read_mindir(_write(tmp_path, data))

    assert "lenet.mindir" in str(info.value)


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (_tensor(None, [1], raw=b"\0" * 4), "has no name"),
        (_tensor("g:w", [1], data_type=None, raw=b"\0" * 4), r"'w' has no data_type"),
        (_tensor("g:w", [2, 3], raw=b"\0" * 20), r"'w' has dims \[2, 3\] but 20 bytes of raw_data"),
        (_tensor("g:w", [2], raw=b"\0" * 9), "9 bytes of raw_data"),
        (_tensor("g:w", [2], floats=[1.0]), "4 bytes of float_data"),
        (_tensor("g:w", [2]), "holds no values"),
        (_tensor("g:w", [2, 0], raw=b""), "no elements"),
        (_tensor("g:w", [-1, 2], raw=b"\0" * 8), "negative"),
        (_tensor("g:w", [2], raw=struct.pack("<2f", 1.0, float("nan"))), "NaN"),
        (_tensor("g:w", [1], raw=b"\0" * 4, extra=_vi(16, 3)), "compressed"),
        (_tensor("g:w", [2**62] * 40, raw=b"\0" * 4), "40 dims"),
        (_tensor("g:w", [2**62, 2**62, 2**62], raw=b"\0" * 4), "but 4 bytes"),
    ],
)
def test_bad_float32_parameters_are_refused(tmp_path, tensor, message):
    with pytest.raises(ModelFormatError, match=message):
        read_mindir(_write(tmp_path, _model(_graph(tensor))))


def test_external_data_is_refused_with_the_reason(tmp_path):
    external = _ld(12, _s(1, "big_variables/data_0") + _vi(2, 64) + _vi(3, 8))
    graph = _graph(_tensor("g:w", [2], extra=external))

    with pytest.raises(ModelFormatError, match="external data file 'big_variables/data_0'") as info:
        read_mindir(_write(tmp_path, _model(graph), name="big_graph.mindir"))

    assert "1 GB" in str(info.value)
    assert ".ckpt" in str(info.value)


def test_hostile_lengths_are_refused_without_allocating(tmp_path):
    # raw_data claiming 2**40 bytes; dims claiming 2**60 elements over 4 real bytes
    data = _ld(7, _ld(3, _s(7, "g:w") + _vi(2, FLOAT) + _key(9, 2) + _varint(2**40) + b"\0" * 8))
    with pytest.raises(ModelFormatError, match="claims"):
        read_mindir(_write(tmp_path, data))
    with pytest.raises(ModelFormatError, match="but 4 bytes"):
        read_mindir(_write(tmp_path, _model(_graph(_tensor("g:w", [2**60], raw=b"\0" * 4)))))


def test_duplicate_names_are_refused(tmp_path):
    graph = _graph(_tensor("g:w", [1], raw=b"\0" * 4), _tensor("h:w", [1], raw=b"\0" * 4))

    with pytest.raises(ModelFormatError, match="'w' appears twice"):
        read_mindir(_write(tmp_path, _model(graph)))


def test_no_float32_parameter_is_refused(tmp_path):
    only_int = _graph(_tensor("g:step", [1], INT32, raw=b"\0" * 4))
    with pytest.raises(ModelFormatError, match=r"no float32 parameter .*INT32"):
        read_mindir(_write(tmp_path, _model(only_int)))

    with pytest.raises(ModelFormatError, match="holds no parameter") as info:
        read_mindir(_write(tmp_path, _model(_graph())))
    assert "_variables" not in str(info.value)


def test_old_split_export_points_at_the_variables_directory(tmp_path):
    # Older mindspore.export moved every parameter of a >1 GB model to <name>_variables/data_N
    (tmp_path / "big_variables").mkdir()

    with pytest.raises(ModelFormatError, match="big_variables") as info:
        read_mindir(_write(tmp_path, _model(_graph()), name="big_graph.mindir"))

    assert "1 GB" in str(info.value)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="cannot read MindIR file"):
        read_mindir(tmp_path / "absent.mindir")


def test_feature_map_path_loads_mindir(tmp_path):
    path = _write(tmp_path, _model(_lenet_graph()))

    weights = to_model_weights(str(path))

    assert weights.names == ["conv1.weight", "fc.bias", "scale"]
    np.testing.assert_array_equal(weights["conv1.weight"], WEIGHT)
    assert to_model_weights(path).names == weights.names  # os.PathLike too
    assert to_model_weights(str(_write(tmp_path, _model(_lenet_graph()), name="UPPER.MINDIR"))).names == weights.names


def test_feature_map_path_errors_are_job_config_errors(tmp_path):
    external = _ld(12, _s(1, "m_variables/data_0"))
    path = _write(tmp_path, _model(_graph(_tensor("g:w", [2], extra=external))))

    with pytest.raises(JobConfigError, match="Failed to load feature_map .*external data file"):
        to_model_weights(str(path))
    with pytest.raises(RuntimeError, match="cannot read MindIR file"):  # MindSpore's tests catch RuntimeError
        to_model_weights(str(tmp_path / "absent.mindir"))
    with pytest.raises(JobConfigError, match="no float32 parameter"):
        to_model_weights(str(_write(tmp_path, _model(_graph(_tensor("g:s", [1], INT32, raw=b"\0" * 4))))))
