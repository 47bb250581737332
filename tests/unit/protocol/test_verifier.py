"""Targeted cases for the FlatBuffers verifier: each C++ Verifier rule, accepted and rejected."""

from __future__ import annotations

import struct

import flatbuffers
import numpy as np
import pytest

from mindfed.errors import ProtocolError
from mindfed.protocol.generated import RequestGetResult as RgrGen
from mindfed.protocol.messages import (
    build_request_get_result,
    build_request_update_model,
    build_response_fl_job,
    parse_request_get_result,
    parse_request_push_metrics,
)
from mindfed.protocol.plan import FLPlanParams
from mindfed.protocol.verifier import VerifyFailure, verify


def _push_metrics(field1_offset: int = 8, soffset: int | None = None) -> bytearray:
    """Hand-assembles a RequestPushMetrics: root uoffset, vtable at 4, table at 12."""
    buf = bytearray(24)
    struct.pack_into("<I", buf, 0, 12)
    struct.pack_into("<HHHH", buf, 4, 8, 12, 4, field1_offset)
    struct.pack_into("<i", buf, 12, 8 if soffset is None else soffset)
    struct.pack_into("<ff", buf, 16, 1.5, 0.25)
    return buf


def _rejects(buf: bytes | bytearray, table: str) -> str:
    with pytest.raises(ProtocolError, match=f"^The schema of {table} is invalid.$") as info:
        verify(buf, table)
    assert isinstance(info.value.__cause__, VerifyFailure)
    return str(info.value.__cause__)


def test_hand_assembled_buffer_is_accepted_and_read() -> None:
    view = parse_request_push_metrics(bytes(_push_metrics()))
    assert (view.loss, view.accuracy) == (1.5, 0.25)


def test_vtable_after_its_table_is_accepted() -> None:
    # Prepare: table at 4, vtable at 16 (negative soffset), as some writers emit.
    buf = bytearray(28)
    struct.pack_into("<I", buf, 0, 4)
    struct.pack_into("<i", buf, 4, 4 - 16)
    struct.pack_into("<ff", buf, 8, 2.0, 3.0)
    struct.pack_into("<HHHH", buf, 16, 8, 12, 4, 8)

    # Execute
    view = parse_request_push_metrics(bytes(buf))

    # Assert
    assert (view.loss, view.accuracy) == (2.0, 3.0)


@pytest.mark.parametrize("size", [0, 1, 3, 4, 7])
def test_buffers_too_short_for_a_root_are_rejected(size: int) -> None:
    _rejects(bytes(size), "RequestPushMetrics")


def test_zero_root_offset_is_rejected() -> None:
    buf = _push_metrics()
    struct.pack_into("<I", buf, 0, 0)
    assert "zero" in _rejects(buf, "RequestPushMetrics")


def test_root_offset_past_the_end_is_rejected() -> None:
    buf = _push_metrics()
    struct.pack_into("<I", buf, 0, 24)
    _rejects(buf, "RequestPushMetrics")


def test_misaligned_table_is_rejected() -> None:
    buf = _push_metrics()
    struct.pack_into("<I", buf, 0, 13)
    assert "misaligned" in _rejects(buf, "RequestPushMetrics")


def test_odd_vtable_position_is_rejected() -> None:
    assert "vtable" in _rejects(_push_metrics(soffset=9), "RequestPushMetrics")


def test_vtable_outside_the_buffer_is_rejected() -> None:
    _rejects(_push_metrics(soffset=-2000), "RequestPushMetrics")
    _rejects(_push_metrics(soffset=2000), "RequestPushMetrics")


def test_odd_or_oversized_vtable_size_is_rejected() -> None:
    buf = _push_metrics()
    struct.pack_into("<H", buf, 4, 7)
    _rejects(buf, "RequestPushMetrics")
    struct.pack_into("<H", buf, 4, 40)
    _rejects(buf, "RequestPushMetrics")


def test_table_size_past_the_end_is_rejected() -> None:
    buf = _push_metrics()
    struct.pack_into("<H", buf, 6, 13)
    assert "overruns" in _rejects(buf, "RequestPushMetrics")


def test_misaligned_float_field_is_rejected() -> None:
    assert "scalar" in _rejects(_push_metrics(field1_offset=6), "RequestPushMetrics")


def test_float_field_past_the_end_is_rejected() -> None:
    _rejects(_push_metrics(field1_offset=12), "RequestPushMetrics")


def test_short_vtable_of_an_older_writer_reads_defaults() -> None:
    # Prepare: vtable of size 6 lists only `loss`; `accuracy` is absent.
    buf = _push_metrics()
    struct.pack_into("<H", buf, 4, 6)

    # Execute
    view = parse_request_push_metrics(bytes(buf))

    # Assert
    assert (view.loss, view.accuracy) == (1.5, 0.0)


def test_unknown_trailing_fields_of_a_newer_writer_are_accepted() -> None:
    # Prepare: RequestGetResult with two extra slots the schema does not know.
    builder = flatbuffers.Builder(64)
    name = builder.CreateString("job")
    extra = builder.CreateString("from the future")
    builder.StartObject(5)
    RgrGen.RequestGetResultAddFlName(builder, name)
    RgrGen.RequestGetResultAddIteration(builder, 7)
    builder.PrependUOffsetTRelativeSlot(3, extra, 0)
    builder.PrependInt64Slot(4, 1 << 40, 0)
    builder.Finish(builder.EndObject())

    # Execute
    view = parse_request_get_result(bytes(builder.Output()))

    # Assert
    assert (view.fl_name, view.iteration, view.timestamp) == ("job", 7, "")


def _string_position(buf: bytes, text: bytes) -> int:
    pos = buf.index(text)
    assert struct.unpack_from("<I", buf, pos - 4)[0] == len(text)
    return pos


def test_string_without_nul_terminator_is_rejected() -> None:
    buf = bytearray(build_request_get_result("job-name", 1, "12345"))
    pos = _string_position(bytes(buf), b"job-name")
    buf[pos + 8] = ord("x")
    assert "NUL" in _rejects(buf, "RequestGetResult")


@pytest.mark.parametrize("length", [0x7FFFFFFF, 0xFFFFFFFF, 1 << 31, 1 << 20])
def test_huge_string_length_is_rejected(length: int) -> None:
    buf = bytearray(build_request_get_result("job-name", 1, "12345"))
    struct.pack_into("<I", buf, _string_position(bytes(buf), b"job-name") - 4, length)
    _rejects(buf, "RequestGetResult")


@pytest.mark.parametrize("extra", [1, 2, 1 << 28, 0x3FFFFFFF, 0xFFFFFFFF])
def test_float_vector_longer_than_the_buffer_is_rejected(extra: int) -> None:
    # Prepare: the float vector is the last thing in the buffer minus the name's bytes.
    data = np.arange(8, dtype=np.float32)
    buf = bytearray(build_request_update_model("j", "d", 1, [("w", data)], "1"))
    vec = bytes(buf).index(data.tobytes()) - 4
    room = (len(buf) - vec - 4) // 4

    # Execute
    struct.pack_into("<I", buf, vec, min(room + extra, 0xFFFFFFFF))

    # Assert
    _rejects(buf, "RequestUpdateModel")


def test_offset_at_or_above_2_gib_is_rejected() -> None:
    buf = _push_metrics()
    struct.pack_into("<I", buf, 0, 1 << 31)
    _rejects(buf, "RequestPushMetrics")


def test_table_count_limit_is_enforced() -> None:
    # Prepare: root + 5 FeatureMap tables = 6 tables.
    weights = [(f"w{i}", np.zeros(2, np.float32)) for i in range(5)]
    buf = build_request_update_model("j", "d", 1, weights, "1")

    # Execute / Assert
    verify(buf, "RequestUpdateModel", max_tables=6)
    with pytest.raises(ProtocolError):
        verify(buf, "RequestUpdateModel", max_tables=5)


def test_depth_limit_is_enforced() -> None:
    # Prepare: ResponseFLJob -> FLPlan -> CipherPublicParams -> PWParams is 4 deep.
    plan = FLPlanParams(server_mode="FEDERATED_LEARNING", fl_name="j", iterations=1, epochs=1, mini_batch=1, lr=0.1)
    buf = build_response_fl_job(200, "success", 1, True, "1", plan)

    # Execute / Assert
    verify(buf, "ResponseFLJob", max_depth=4)
    with pytest.raises(ProtocolError):
        verify(buf, "ResponseFLJob", max_depth=3)


def test_memoryview_and_bytearray_inputs_are_accepted() -> None:
    buf = build_request_get_result("job", 2, "9")
    verify(memoryview(buf), "RequestGetResult")
    verify(bytearray(buf), "RequestGetResult")
    verify(memoryview(bytearray(buf)).cast("B"), "RequestGetResult")


def test_unknown_root_table_is_a_caller_bug() -> None:
    with pytest.raises(KeyError):
        verify(b"\x00" * 16, "NoSuchTable")


def test_wrong_root_type_is_rejected_when_layouts_differ() -> None:
    # A RequestPushMetrics read as RequestGetResult: float bits where a string offset belongs.
    _rejects(_push_metrics(), "RequestGetResult")
