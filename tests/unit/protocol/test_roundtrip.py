"""Every builder/parser pair round-trips, tensors are zero-copy views, presence is kept."""

from __future__ import annotations

import numpy as np
import pytest

from mindfed.errors import ProtocolError
from mindfed.protocol.messages import (
    CipherParams,
    CompressType,
    FLPlanParams,
    ResponseCode,
    build_request_fl_job,
    build_request_get_model,
    build_request_get_result,
    build_request_push_metrics,
    build_request_update_model,
    build_response_fl_job,
    build_response_get_model,
    build_response_get_result,
    build_response_push_metrics,
    build_response_update_model,
    parse_request_fl_job,
    parse_request_get_model,
    parse_request_get_result,
    parse_request_push_metrics,
    parse_request_update_model,
    parse_response_fl_job,
    parse_response_get_model,
    parse_response_get_result,
    parse_response_push_metrics,
    parse_response_update_model,
)

RNG = np.random.default_rng(1234)
WEIGHTS = [("conv1.weight", RNG.standard_normal((4, 3)).astype(np.float32)), ("fc.bias", np.arange(5.0))]
PLAN = FLPlanParams(server_mode="FEDERATED_LEARNING", fl_name="job", iterations=20, epochs=2, mini_batch=32, lr=0.01)


def test_request_fl_job_round_trips() -> None:
    buf = build_request_fl_job("job", "dev-1", 4, 600, "1700000000123", (0, 2), eval_data_size=50)
    view = parse_request_fl_job(buf)
    assert (view.fl_name, view.fl_id, view.iteration, view.data_size) == ("job", "dev-1", 4, 600)
    assert (view.timestamp, view.download_compress_types, view.eval_data_size) == ("1700000000123", (0, 2), 50)
    assert view.has_fl_name
    assert view.has_fl_id
    assert view.has_timestamp
    assert not (view.has_key_attestation)
    assert not (view.has_equip_cert)
    assert not (view.has_sign_data)


def test_request_fl_job_pki_fields_round_trip() -> None:
    buf = build_request_fl_job(
        "job", "dev-1", 4, 6, "1", sign_data=b"\x01\x02", key_attestation="ka", equip_cert="ec",
        equip_ca_cert="eca", root_cert="rc",
    )  # fmt: skip
    view = parse_request_fl_job(buf)
    assert (view.sign_data, view.key_attestation, view.equip_cert) == (b"\x01\x02", "ka", "ec")
    assert (view.equip_ca_cert, view.root_cert, view.has_equip_ca_cert) == ("eca", "rc", True)


@pytest.mark.parametrize("missing", ["fl_id", "fl_name", "timestamp"])
def test_omitted_request_fl_job_field_reads_as_absent_not_empty(missing: str) -> None:
    view = parse_request_fl_job(build_request_fl_job("job", "dev-1", 1, 5, "7", omit={missing}))
    assert getattr(view, f"has_{missing}") is False
    assert getattr(view, missing) == ""


def test_empty_string_is_present() -> None:
    view = parse_request_fl_job(build_request_fl_job("job", "", 1, 5, ""))
    assert view.has_fl_id
    assert view.has_timestamp
    assert view.fl_id == ""


def test_omit_rejects_unknown_field_names() -> None:
    with pytest.raises(ValueError, match="fl_idd"):
        build_request_fl_job("job", "dev", 1, 5, "7", omit={"fl_idd"})


def test_request_update_model_round_trips_every_field() -> None:
    # Prepare
    codes = np.arange(-4, 4, dtype=np.int8)
    buf = build_request_update_model(
        "job", "dev-1", 9, WEIGHTS, "17", 0.25, 0.75, [("conv1.weight", codes, -2.0, 3.0)],
        CompressType.DIFF_SPARSE_QUANT, 0.5, ("conv1.weight", "fc.bias"), [("mae", [1.0, 2.0])],
        sign=-1, index_array=[3, 1], signature=b"sig", signds_b_hat="0.5",
    )  # fmt: skip

    # Execute
    view = parse_request_update_model(buf)

    # Assert
    assert (view.fl_name, view.fl_id, view.iteration, view.timestamp) == ("job", "dev-1", 9, "17")
    assert (view.upload_loss, view.upload_accuracy, view.sign) == (0.25, 0.75, -1)
    assert [t.name for t in view.feature_map] == ["conv1.weight", "fc.bias"]
    np.testing.assert_array_equal(view.feature_map[0].data, WEIGHTS[0][1].reshape(-1))
    np.testing.assert_array_equal(view.feature_map[1].data, np.arange(5, dtype=np.float32))
    assert view.feature_map[1].data.dtype == np.float32
    (cfm,) = view.compress_feature_map
    assert (cfm.name, cfm.min_val, cfm.max_val, cfm.complete) == ("conv1.weight", -2.0, 3.0, True)
    np.testing.assert_array_equal(cfm.data, codes)
    assert (view.upload_compress_type, view.upload_sparse_rate) == (1, 0.5)
    assert view.name_vec == ("conv1.weight", "fc.bias")
    assert view.index_array.tolist() == [3, 1]
    assert view.signature == b"sig"
    assert view.signds_b_hat == "0.5"
    (item,) = view.unsupervised_eval_items
    assert item.name == "mae"
    assert item.data.tolist() == [1.0, 2.0]
    assert view.has_feature_map
    assert view.has_compress_feature_map
    assert view.has_unsupervised_eval_items


def test_update_model_absent_vectors_are_flagged() -> None:
    view = parse_request_update_model(build_request_update_model("job", "dev", 1, None, "1"))
    assert not (view.has_feature_map)
    assert not (view.has_compress_feature_map)
    assert not (view.has_index_array)
    assert view.feature_map == ()
    assert view.index_array.size == 0
    assert not view.has_unsupervised_eval_items


@pytest.mark.parametrize("missing", ["feature_map.weight_fullname", "feature_map.data"])
def test_feature_map_entry_lacking_name_or_data_is_detectable(missing: str) -> None:
    view = parse_request_update_model(build_request_update_model("job", "dev", 1, WEIGHTS, "1", omit={missing}))
    assert len(view.feature_map) == 2
    assert not any(t.complete for t in view.feature_map)
    assert all(t.has_name == (missing != "feature_map.weight_fullname") for t in view.feature_map)


def test_update_model_tensors_are_views_into_the_request_buffer() -> None:
    # Prepare
    data = np.array([1.5, 2.5, 3.5, 4.5], np.float32)
    buf = bytearray(build_request_update_model("job", "dev", 1, [("w", data)], "1"))
    view = parse_request_update_model(buf)
    data_pos = bytes(buf).index(data.tobytes())

    # Execute: write into the request bytes after parsing
    buf[data_pos : data_pos + 4] = np.float32(42.0).tobytes()

    # Assert
    assert view.feature_map[0].data[0] == 42.0


def test_views_of_bytes_are_read_only() -> None:
    view = parse_request_update_model(build_request_update_model("job", "dev", 1, WEIGHTS, "1"))
    with pytest.raises(ValueError, match="read-only"):
        view.feature_map[0].data[0] = 1.0


def test_get_model_get_result_push_metrics_requests_round_trip() -> None:
    gm = parse_request_get_model(build_request_get_model("job", 5, "99", (0,)))
    assert (gm.fl_name, gm.iteration, gm.timestamp, gm.download_compress_types) == ("job", 5, "99", (0,))
    gr = parse_request_get_result(build_request_get_result("job", 6, "98"))
    assert (gr.fl_name, gr.iteration, gr.timestamp) == ("job", 6, "98")
    pm = parse_request_push_metrics(build_request_push_metrics(0.5, 0.125))
    assert (pm.loss, pm.accuracy) == (0.5, 0.125)


def test_response_fl_job_round_trips_with_plan_and_cipher() -> None:
    # Prepare
    cipher = CipherParams(
        encrypt_type="DP_ENCRYPT", pw_t=3, pw_prime=bytes(range(33)), dp_eps=50.0, dp_delta=0.01,
        dp_norm_clip=1.0, sign_k=0.2, sign_eps=100.0, sign_thr_ratio=0.6, sign_global_lr=0.1,
        sign_dim_out=2, signds_r_est=0.5, signds_is_reached=1, laplace_params=230.0,
    )  # fmt: skip
    codes = [("fc.bias", np.arange(5, dtype=np.int8), 0.0, 4.0)]

    # Execute
    view = parse_response_fl_job(
        build_response_fl_job(200, "success", 7, True, "1700", PLAN, WEIGHTS, 1, 0.25, 2, codes, "LAPLACE", cipher)
    )

    # Assert
    assert (view.retcode, view.reason, view.iteration, view.is_selected) == (200, "success", 7, True)
    assert (view.next_req_time, view.timestamp, view.unsupervised_eval_flg) == ("1700", "", "LAPLACE")
    assert (view.upload_compress_type, view.upload_sparse_rate, view.download_compress_type) == (1, 0.25, 2)
    assert view.fl_plan is not None
    plan = view.fl_plan
    assert (plan.server_mode, plan.fl_name, plan.iterations, plan.epochs, plan.mini_batch) == (
        "FEDERATED_LEARNING", "job", 20, 2, 32,
    )  # fmt: skip
    assert plan.lr == pytest.approx(0.01)
    assert plan.encrypt_type == "DP_ENCRYPT"
    assert plan.cipher is not None
    expected = {k: float(np.float32(v)) if isinstance(v, float) else v for k, v in vars_of(cipher).items()}
    assert vars_of(plan.cipher) == expected
    np.testing.assert_array_equal(view.feature_map[0].data, WEIGHTS[0][1].reshape(-1))
    assert view.compress_feature_map[0].data.tolist() == [0, 1, 2, 3, 4]


def vars_of(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}  # type: ignore[attr-defined]


def test_secure_compressed_upload_announcement_round_trips_and_is_absent_otherwise() -> None:
    # Prepare: the mindfed-only field is appended after MindSpore's last one (vtable slot 13)
    on = build_response_fl_job(200, "success", 3, True, "1", PLAN, WEIGHTS, int(CompressType.SECURE_SPARSE_QUANT),
                               0.4, upload_quant_bound=0.05)
    off = build_response_fl_job(200, "success", 3, True, "1", PLAN, WEIGHTS, 1, 0.4)

    # Execute
    on_view, off_view = parse_response_fl_job(on), parse_response_fl_job(off)

    # Assert
    assert (on_view.upload_compress_type, on_view.upload_quant_bound) == (3, float(np.float32(0.05)))
    assert off_view.upload_quant_bound == 0.0
    assert _vtable_slots(off) <= 13  # nothing past MindSpore's 13 fields: the bytes a Java device always got
    assert _vtable_slots(on) == 14


def _vtable_slots(buf: bytes) -> int:
    root = int.from_bytes(buf[:4], "little")
    vtable = root - int.from_bytes(buf[root:root + 4], "little", signed=True)
    return (int.from_bytes(buf[vtable:vtable + 2], "little") - 4) // 2


def test_response_fl_job_without_plan_reads_none() -> None:
    view = parse_response_fl_job(build_response_fl_job(ResponseCode.OutOfTime, "later", next_req_time="5"))
    assert view.fl_plan is None
    assert view.feature_map == ()
    assert view.retcode == 300


def test_other_responses_round_trip() -> None:
    um = parse_response_update_model(build_response_update_model(200, "success not ready", "1800"))
    assert (um.retcode, um.reason, um.next_req_time, um.timestamp) == (200, "success not ready", "1800", "")
    gm = parse_response_get_model(build_response_get_model(200, "Get model for iteration 3", 4, WEIGHTS, "1900"))
    assert (gm.retcode, gm.iteration, gm.timestamp, gm.download_compress_type) == (200, 4, "1900", 0)
    assert [t.name for t in gm.feature_map] == ["conv1.weight", "fc.bias"]
    gr = parse_response_get_result(build_response_get_result(201, "not ready", 4, "2000"))
    assert (gr.retcode, gr.reason, gr.iteration, gr.timestamp) == (201, "not ready", 4, "2000")
    assert parse_response_push_metrics(build_response_push_metrics(200)) == 200


def test_plain_text_body_is_rejected_by_the_flatbuffer_parser() -> None:
    with pytest.raises(ProtocolError, match="ResponseGetModel"):
        parse_response_get_model(b"The cluster is in safemode.")


def test_non_utf8_text_is_a_protocol_error() -> None:
    buf = bytearray(build_request_get_result("job-name", 1, "1"))
    buf[bytes(buf).index(b"job-name")] = 0xFF
    with pytest.raises(ProtocolError, match="The schema of RequestGetResult is invalid."):
        parse_request_get_result(bytes(buf))


def test_ten_million_floats_build_and_parse_quickly() -> None:
    import time

    big = np.linspace(-1, 1, 10_000_000, dtype=np.float32)
    start = time.perf_counter()
    buf = build_response_get_model(200, "ok", 1, [("w", big)], "1")
    built = time.perf_counter()
    view = parse_response_get_model(buf)
    parsed = time.perf_counter()
    assert built - start < 0.5
    assert parsed - built < 0.05
    assert np.may_share_memory(view.feature_map[0].data, np.frombuffer(buf, np.uint8))
    assert view.feature_map[0].data[-1] == 1.0


def test_a_model_answer_built_into_an_allocated_buffer_has_the_same_bytes() -> None:
    # the server builds startFLJob's and getModel's answers into the memfd it sends them from (writer.new_builder)
    allocated: list[int] = []

    def into(size: int) -> bytearray:
        allocated.append(size)
        return bytearray(size)

    fl_job = {"retcode": int(ResponseCode.SUCCEED), "reason": "success", "iteration": 4, "is_selected": True,
              "next_req_time": "1700000000000", "fl_plan": PLAN, "feature_map": WEIGHTS,
              "cipher": CipherParams(encrypt_type="NOT_ENCRYPT")}
    with build_response_fl_job(**fl_job, into=into) as built:  # type: ignore[arg-type]  # a dict of mixed values
        assert bytes(built) == build_response_fl_job(**fl_job)  # type: ignore[arg-type]
    with build_response_get_model(0, "ok", 4, WEIGHTS, "1700000000000", into=into) as built:
        assert bytes(built) == build_response_get_model(0, "ok", 4, WEIGHTS, "1700000000000")
    assert len(allocated) == 2


def test_tensor_vectors_are_the_bytes_flatbuffers_own_numpy_vector_writes() -> None:
    import flatbuffers  # noqa: PLC0415

    from mindfed.protocol.writer import numpy_vector  # noqa: PLC0415

    for data, dtype in ((RNG.standard_normal(37).astype(np.float32), "<f4"), (np.arange(-5, 6, dtype=np.int8), "i1"),
                        (np.zeros(0, np.float32), "<f4")):
        ours, theirs = flatbuffers.Builder(0), flatbuffers.Builder(0)
        ours.CreateString("x")
        theirs.CreateString("x")  # an odd head first, so alignment padding is exercised
        assert numpy_vector(ours, data, dtype) == theirs.CreateNumpyVector(data.astype(np.dtype(dtype)))
        assert ours.Bytes[ours.Head():] == theirs.Bytes[theirs.Head():]


@pytest.mark.parametrize(("weights", "omit"), [
    (WEIGHTS, set()), (WEIGHTS, {"feature_map.weight_fullname"}), (WEIGHTS, {"feature_map.data"}),
    ([("empty", np.zeros(0, np.float32)), ("w", np.arange(3.0))], set()), ([], set()), (WEIGHTS, {"feature_map"}),
])
def test_feature_maps_read_off_the_buffer_as_the_generated_accessors_read_them(weights: list, omit: set) -> None:
    from mindfed.protocol.generated.RequestUpdateModel import RequestUpdateModel  # noqa: PLC0415

    body = build_request_update_model("job", "dev", 1, weights, "1", omit=omit)
    root = RequestUpdateModel.GetRootAs(body, 0)
    expected = []
    for j in range(root.FeatureMapLength()):
        fm = root.FeatureMap(j)
        data = np.zeros(0, np.float32) if fm.DataIsNone() else fm.DataAsNumpy()
        expected.append((fm.WeightFullname(), data.tolist(), not fm.DataIsNone()))
    got = parse_request_update_model(body).feature_map
    assert [(t.name.encode() if t.has_name else None, t.data.tolist(), t.has_data) for t in got] == expected
