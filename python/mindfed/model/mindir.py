"""MindSpore MindIR files (spec §1.2, §13): the float32 parameters of a model exported with `mindspore.export`.

MindSpore Federated's `FLServerJob.run(feature_map="model.mindir")` runs `mindspore.load` + `nn.GraphCell` and
federates every float32 parameter of the graph cell under its name, skipping the other dtypes. This module reads the
same parameters straight from the file, without MindSpore.

Layout (protobuf proto2, package `mind_ir`, `mindspore/core/proto/mind_ir.proto` in mindspore-ai/mindspore); only the
fields read here are listed, every other field (nodes, graph inputs/outputs, primitives, ...) is skipped::

    message ModelProto  { optional GraphProto graph = 7;           // the main graph: it alone holds weights
                          repeated GraphProto functions = 8;       // sub-graphs, never parameters with data
                          optional bool little_endian = 10; }      // byte order of raw_data (absent: little)
    message GraphProto  { repeated TensorProto parameter = 3;      // the weights
                          repeated MapTensorProto map_parameter = 10; }
    message TensorProto { repeated int64 dims = 1;  optional int32 data_type = 2;  repeated float float_data = 3;
                          optional string name = 7;  optional bytes raw_data = 9;
                          optional ExternalDataProto external_data = 12;   // {string location = 1; ...}
                          optional CompressionType compression_type = 16;  // NO_COMPRESSION = 0
                          enum DataType { FLOAT = 1; ... } }

A parameter is named "<graph name>:<parameter name>"; like MindSpore's loader (`ParseParameterName`) and exporter
(`name[name.find(":") + 1:]`), everything up to the first ':' is dropped, which gives the network's own names.
`mindspore.export` writes the values as raw_data in host (little-endian) order; a model whose parameters exceed
1 GB goes to `<name>_graph.mindir` plus `<name>_variables/data_N` files instead, which is refused here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mindfed.errors import ModelFormatError
from mindfed.model import protobuf_wire as wire
from mindfed.model.weights import ModelWeights

__all__ = ["read_mindir"]

logger = logging.getLogger(__name__)

_MODEL_GRAPH, _MODEL_LITTLE_ENDIAN = 7, 10
_GRAPH_PARAMETER, _GRAPH_MAP_PARAMETER = 3, 10
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_FLOAT_DATA, _TENSOR_NAME = 1, 2, 3, 7
_TENSOR_RAW_DATA, _TENSOR_EXTERNAL_DATA, _TENSOR_COMPRESSION_TYPE = 9, 12, 16
_EXTERNAL_LOCATION = 1

_FLOAT = 1  # TensorProto.DataType.FLOAT: float32
_NO_COMPRESSION = 0
_DATA_TYPE_NAMES = {
    0: "UNDEFINED",
    1: "FLOAT",
    2: "UINT8",
    3: "INT8",
    4: "UINT16",
    5: "INT16",
    6: "INT32",
    7: "INT64",
    8: "STRING",
    9: "BOOL",
    10: "FLOAT16",
    11: "DOUBLE",
    12: "UINT32",
    13: "UINT64",
    14: "COMPLEX64",
    15: "COMPLEX128",
    16: "BFLOAT16",
    17: "FLOAT64",
}
# mindspore.export(..., enc_key=...) output begins with crypto.cc's MAGIC_NUM, written little-endian: AES-GCM,
# AES-CBC, SM4-CBC. No plain ModelProto can begin with these bytes (0x7f would be a key of wire type 7).
_CIPHER_MAGICS = frozenset(magic.to_bytes(4, "little") for magic in (0x7F3A5ED8, 0x7F3A5ED9, 0x7F3A5EDA))
_MAX_DIMS = 32  # numpy's limit before 2.0; no real weight comes near it
_FLOAT32_SIZE = 4


@dataclass(slots=True)
class _Parameter:
    """One GraphProto.parameter as found in the file; byte ranges are views into the file's buffer."""

    offset: int  # of its key, for error messages
    name: str | None = None
    dims: list[int] = field(default_factory=list)
    data_type: int | None = None
    raw_data: memoryview | None = None
    float_data: bytearray = field(default_factory=bytearray)  # little-endian float32s, packed or not in the file
    external_location: str | None = None
    compression_type: int = _NO_COMPRESSION


@dataclass(slots=True)
class _Model:
    graphs: int = 0
    little_endian: bool = True
    parameters: list[_Parameter] = field(default_factory=list)
    map_parameters: int = 0


def read_mindir(path: str | os.PathLike[str]) -> ModelWeights:
    """Reads every float32 parameter of a MindIR file's main graph, as MindSpore Federated federates it.

    Parameters of other dtypes (int32 steps, float16, ...) and MapTensor parameters are skipped, with a log line.

    Args:
        path: the `.mindir` file written by `mindspore.export(net, ..., file_format="MINDIR")`.

    Returns:
        ModelWeights of the float32 parameters (names without the graph prefix, all require_aggr True).

    Raises:
        ModelFormatError: the file cannot be opened, is empty, encrypted, corrupt or truncated; a float32 parameter
            lives in an external data file, is compressed, has no data, or has data that disagrees with its dims;
            two parameters share a name; there is no float32 parameter; or a value ModelWeights refuses (NaN, inf,
            no elements). Every message names the file, and the parameter or byte offset at fault.
    """
    data = wire.read_message_file(path, "MindIR file")
    if data[:4] in _CIPHER_MAGICS:
        raise ModelFormatError(
            f"{path}: the MindIR file is encrypted (exported with enc_key), which mindfed cannot decrypt; export it "
            "without enc_key, or pass a '.ckpt' checkpoint"
        )
    buffer = memoryview(data)
    try:
        model = _parse_model(buffer)
    except wire.WireError as exc:
        raise ModelFormatError(
            f"{path}: not a readable MindIR ModelProto (corrupt, truncated, or encrypted with a custom enc_mode): {exc}"
        ) from exc
    if model.graphs == 0:
        raise ModelFormatError(f"{path}: not a MindIR model: the ModelProto has no graph (field 7)")
    if model.map_parameters:
        logger.warning(
            "%s: skipping %d MapTensor parameter(s) (not supported by the FL server)", path, model.map_parameters
        )
    tensors = _float32_tensors(path, model)
    if not tensors:
        raise ModelFormatError(_no_parameter_message(path, model))
    logger.info("%s: %d float32 parameters of %d in the main graph", path, len(tensors), len(model.parameters))
    try:
        return ModelWeights(tensors)
    except ValueError as exc:
        raise ModelFormatError(f"{path}: {exc}") from exc


def _parse_model(buffer: memoryview) -> _Model:
    """Walks ModelProto and the GraphProto(s) of field 7; several graph fields merge, as protobuf merges them."""
    model = _Model()
    for item in wire.iter_fields(buffer, 0, len(buffer)):
        if item.number == _MODEL_GRAPH:
            _expect(item, wire.LENGTH_DELIMITED, "ModelProto.graph")
            model.graphs += 1
            _parse_graph(buffer, item, model)
        elif item.number == _MODEL_LITTLE_ENDIAN:
            _expect(item, wire.VARINT, "ModelProto.little_endian")
            model.little_endian = item.value != 0
    return model


def _parse_graph(buffer: memoryview, graph: wire.Field, model: _Model) -> None:
    for item in wire.iter_fields(buffer, graph.start, graph.end):
        if item.number == _GRAPH_PARAMETER:
            _expect(item, wire.LENGTH_DELIMITED, "GraphProto.parameter")
            model.parameters.append(_parse_tensor(buffer, item))
        elif item.number == _GRAPH_MAP_PARAMETER:
            _expect(item, wire.LENGTH_DELIMITED, "GraphProto.map_parameter")
            model.map_parameters += 1


def _parse_tensor(buffer: memoryview, tensor: wire.Field) -> _Parameter:
    """Parses one TensorProto; repeated scalars are accepted packed or unpacked, as proto2 parsers must."""
    param = _Parameter(tensor.key_offset)
    for item in wire.iter_fields(buffer, tensor.start, tensor.end):
        if item.number == _TENSOR_DIMS:
            param.dims.extend(_repeated_int64(buffer, item, "TensorProto.dims"))
        elif item.number == _TENSOR_DATA_TYPE:
            _expect(item, wire.VARINT, "TensorProto.data_type")
            param.data_type = wire.as_int64(item.value)
        elif item.number == _TENSOR_FLOAT_DATA:
            _add_floats(buffer, item, param.float_data)
        elif item.number == _TENSOR_NAME:
            _expect(item, wire.LENGTH_DELIMITED, "TensorProto.name")
            param.name = _utf8(buffer, item, "TensorProto.name")
        elif item.number == _TENSOR_RAW_DATA:
            _expect(item, wire.LENGTH_DELIMITED, "TensorProto.raw_data")
            param.raw_data = buffer[item.start : item.end]
        elif item.number == _TENSOR_EXTERNAL_DATA:
            _expect(item, wire.LENGTH_DELIMITED, "TensorProto.external_data")
            param.external_location = _external_location(buffer, item)
        elif item.number == _TENSOR_COMPRESSION_TYPE:
            _expect(item, wire.VARINT, "TensorProto.compression_type")
            param.compression_type = wire.as_int64(item.value)
    return param


def _repeated_int64(buffer: memoryview, item: wire.Field, what: str) -> list[int]:
    if item.wire_type == wire.VARINT:
        return [wire.as_int64(item.value)]
    _expect(item, wire.LENGTH_DELIMITED, what)
    values: list[int] = []
    position = item.start
    while position < item.end:
        value, position = wire.decode_varint(buffer, position, item.end)
        values.append(wire.as_int64(value))
    return values


def _add_floats(buffer: memoryview, item: wire.Field, out: bytearray) -> None:
    """Appends the bytes of float_data (packed: one length-delimited run; unpacked: one fixed32 per value)."""
    if item.wire_type == wire.FIXED32:
        out += buffer[item.start : item.end]
        return
    _expect(item, wire.LENGTH_DELIMITED, "TensorProto.float_data")
    if (item.end - item.start) % _FLOAT32_SIZE:
        raise wire.WireError(
            f"packed float_data of {item.end - item.start} bytes, not a multiple of 4", item.key_offset
        )
    out += buffer[item.start : item.end]


def _external_location(buffer: memoryview, item: wire.Field) -> str:
    location = ""
    for sub in wire.iter_fields(buffer, item.start, item.end):
        if sub.number == _EXTERNAL_LOCATION and sub.wire_type == wire.LENGTH_DELIMITED:
            location = bytes(buffer[sub.start : sub.end]).decode("utf-8", errors="replace")
    return location


def _utf8(buffer: memoryview, item: wire.Field, what: str) -> str:
    try:
        return bytes(buffer[item.start : item.end]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise wire.WireError(f"{what} is not UTF-8 ({exc.reason})", item.key_offset) from exc


def _expect(item: wire.Field, wire_type: int, what: str) -> None:
    if item.wire_type != wire_type:
        raise wire.WireError(f"{what} has wire type {item.wire_type}, expected {wire_type}", item.key_offset)


def _float32_tensors(path: str | os.PathLike[str], model: _Model) -> dict[str, np.ndarray]:
    """name -> float32 array (a view into the file's bytes) of each float32 parameter; the others are skipped."""
    dtype = np.dtype("<f4" if model.little_endian else ">f4")
    tensors: dict[str, np.ndarray] = {}
    for param in model.parameters:
        where = f"{path}: parameter at byte offset {param.offset}"
        if param.name is None:
            raise ModelFormatError(f"{where} has no name (TensorProto.name, field 7)")
        name = param.name[param.name.find(":") + 1 :]  # "graph:conv1.weight" -> "conv1.weight"
        where = f"{path}: parameter {name!r}"
        if param.data_type is None:
            raise ModelFormatError(f"{where} has no data_type (TensorProto.data_type, field 2)")
        if param.data_type != _FLOAT:
            type_name = _DATA_TYPE_NAMES.get(param.data_type, str(param.data_type))
            logger.info("%s: skipping %r of data_type %s (only float32 is federated)", path, name, type_name)
            continue
        if name in tensors:
            raise ModelFormatError(f"{where} appears twice in the main graph ({param.name!r})")
        tensors[name] = _values(where, param, dtype)
    return tensors


def _values(where: str, param: _Parameter, dtype: np.dtype) -> np.ndarray:
    """The parameter's values, shaped by its dims: a view of the file's bytes, checked against dims first.

    `dtype` is the float32 byte order of raw_data (ModelProto.little_endian).
    """
    if param.external_location is not None:
        raise ModelFormatError(
            f"{where} is stored in the external data file {param.external_location!r}: mindspore.export writes "
            "models whose parameters exceed 1 GB as '<name>_graph.mindir' plus '<name>_variables/data_N', and "
            "mindfed reads only parameters embedded in the .mindir file; pass a '.ckpt' checkpoint "
            "(mindspore.save_checkpoint) instead"
        )
    if param.compression_type != _NO_COMPRESSION:
        raise ModelFormatError(
            f"{where} is stored compressed (TensorProto.compression_type {param.compression_type}); mindfed reads "
            "only uncompressed float32 parameters"
        )
    if len(param.dims) > _MAX_DIMS:
        raise ModelFormatError(f"{where} has {len(param.dims)} dims, more than {_MAX_DIMS}")
    if any(dim < 0 for dim in param.dims):
        raise ModelFormatError(f"{where} has dims {param.dims}: a dynamic (negative) dimension cannot hold weights")
    if 0 in param.dims:
        raise ModelFormatError(f"{where} has dims {param.dims}, so no elements; a feature needs at least one")
    content: memoryview | bytearray
    if param.raw_data is not None and len(param.raw_data):
        content, source = param.raw_data, "raw_data"
    elif param.float_data:
        # float_data is fixed32 on the wire, little-endian whatever ModelProto.little_endian says
        content, source, dtype = param.float_data, "float_data", np.dtype("<f4")
    else:
        raise ModelFormatError(
            f"{where} (dims {param.dims}) holds no values: neither raw_data nor float_data is set (mindspore.export "
            "leaves them empty for a parameter that belongs to no Cell)"
        )
    available = len(content) // _FLOAT32_SIZE
    expected = 1
    for dim in param.dims:
        expected *= dim
        if expected > available:
            break  # stop before a hostile dims list makes a huge integer
    if len(content) % _FLOAT32_SIZE or expected != available:
        raise ModelFormatError(
            f"{where} has dims {param.dims} but {len(content)} bytes of {source}, not {_FLOAT32_SIZE} bytes per element"
        )
    return np.frombuffer(content, dtype=dtype).reshape(tuple(param.dims))


def _no_parameter_message(path: str | os.PathLike[str], model: _Model) -> str:
    file = Path(path)
    if model.parameters:
        found = sorted({_DATA_TYPE_NAMES.get(p.data_type or 0, str(p.data_type)) for p in model.parameters})
        return (
            f"{path}: holds no float32 parameter (its {len(model.parameters)} parameter(s) are "
            f"{', '.join(found)}); only float32 parameters are federated"
        )
    stem = file.stem.removesuffix("_graph")
    variables = file.with_name(f"{stem}_variables")
    hint = (
        f" Its parameters seem to be in {str(variables)!r}, where mindspore.export puts them for a model over "
        "1 GB; mindfed reads only parameters embedded in the .mindir file, so pass a '.ckpt' checkpoint "
        "(mindspore.save_checkpoint) instead."
        if variables.is_dir()
        else ""
    )
    return f"{path}: the main graph holds no parameter with a value (GraphProto.parameter, field 3) to federate.{hint}"
