"""Byte compatibility with the flatc-generated code (the same code MindSpore's tests use)."""

from __future__ import annotations

import flatbuffers
import numpy as np

from mindfed.protocol.generated import RequestFLJob as RfjGen
from mindfed.protocol.generated import RequestUpdateModel as RumGen
from mindfed.protocol.generated.ResponseFLJob import ResponseFLJob
from mindfed.protocol.generated.ResponseGetModel import ResponseGetModel
from mindfed.protocol.messages import (
    CipherParams,
    FLPlanParams,
    build_request_fl_job,
    build_response_fl_job,
    build_response_get_model,
    parse_request_fl_job,
    parse_request_update_model,
)
from mindfed.protocol.plan import PRIME_BYTES, PW_P_BYTES


def test_request_fl_job_built_by_generated_code_parses() -> None:
    # Prepare: field by field, in the order a Java device adds them.
    builder = flatbuffers.Builder(256)
    fl_name, fl_id, ts = builder.CreateString("lenet"), builder.CreateString("f1"), builder.CreateString("1234")
    RfjGen.RequestFLJobStartDownloadCompressTypesVector(builder, 2)
    builder.PrependInt8(2)
    builder.PrependInt8(0)
    types = builder.EndVector()
    RfjGen.RequestFLJobStart(builder)
    RfjGen.RequestFLJobAddFlName(builder, fl_name)
    RfjGen.RequestFLJobAddFlId(builder, fl_id)
    RfjGen.RequestFLJobAddIteration(builder, 11)
    RfjGen.RequestFLJobAddDataSize(builder, 32)
    RfjGen.RequestFLJobAddTimestamp(builder, ts)
    RfjGen.RequestFLJobAddDownloadCompressTypes(builder, types)
    RfjGen.RequestFLJobAddEvalDataSize(builder, 8)
    builder.Finish(RfjGen.RequestFLJobEnd(builder))

    # Execute
    view = parse_request_fl_job(bytes(builder.Output()))

    # Assert
    assert (view.fl_name, view.fl_id, view.iteration, view.data_size, view.timestamp) == ("lenet", "f1", 11, 32, "1234")
    assert (view.download_compress_types, view.eval_data_size) == ((0, 2), 8)


def test_request_fl_job_we_build_reads_with_generated_accessors() -> None:
    req = RfjGen.RequestFLJob.GetRootAs(build_request_fl_job("lenet", "f1", 3, 9, "77", (0, 2), 4), 0)
    assert (req.FlName(), req.FlId(), req.Iteration(), req.DataSize(), req.Timestamp()) == (
        b"lenet", b"f1", 3, 9, b"77",
    )  # fmt: skip
    assert req.DownloadCompressTypesAsNumpy().tolist() == [0, 2]
    assert req.EvalDataSize() == 4


def test_request_update_model_built_by_generated_code_parses() -> None:
    # Prepare
    builder = flatbuffers.Builder(256)
    name, fl_id = builder.CreateString("fc.w"), builder.CreateString("f1")
    data = builder.CreateNumpyVector(np.array([1.0, -2.0], np.float32))
    from mindfed.protocol.generated import FeatureMap as FmGen

    FmGen.FeatureMapStart(builder)
    FmGen.FeatureMapAddWeightFullname(builder, name)
    FmGen.FeatureMapAddData(builder, data)
    fm = FmGen.FeatureMapEnd(builder)
    RumGen.RequestUpdateModelStartFeatureMapVector(builder, 1)
    builder.PrependUOffsetTRelative(fm)
    fms = builder.EndVector()
    ts = builder.CreateString("5")
    RumGen.RequestUpdateModelStart(builder)
    RumGen.RequestUpdateModelAddFlId(builder, fl_id)
    RumGen.RequestUpdateModelAddIteration(builder, 2)
    RumGen.RequestUpdateModelAddFeatureMap(builder, fms)
    RumGen.RequestUpdateModelAddTimestamp(builder, ts)
    RumGen.RequestUpdateModelAddUploadLoss(builder, 0.5)
    builder.Finish(RumGen.RequestUpdateModelEnd(builder))

    # Execute
    view = parse_request_update_model(bytes(builder.Output()))

    # Assert
    assert (view.fl_id, view.iteration, view.timestamp, view.upload_loss, view.has_fl_name) == (
        "f1",
        2,
        "5",
        0.5,
        False,
    )
    assert view.feature_map[0].name == "fc.w"
    assert view.feature_map[0].data.tolist() == [1.0, -2.0]


def test_response_fl_job_reads_with_generated_accessors() -> None:
    # Prepare
    plan = FLPlanParams(
        server_mode="FEDERATED_LEARNING", fl_name="lenet", iterations=25, epochs=1, mini_batch=32, lr=0.5
    )
    cipher = CipherParams(encrypt_type="PW_ENCRYPT", pw_t=2, pw_prime=b"\x07" * PRIME_BYTES, dp_eps=50.0)
    weights = [("a", np.array([1.0, 2.0], np.float32)), ("b", np.array([3.0], np.float32))]

    # Execute
    buf = build_response_fl_job(200, "success", 4, True, "1700", plan, weights, 0, 0.0, 0, None, "NOT_EVAL", cipher)
    rsp = ResponseFLJob.GetRootAs(buf, 0)

    # Assert
    assert (rsp.Retcode(), rsp.Reason(), rsp.Iteration(), rsp.IsSelected(), rsp.NextReqTime()) == (
        200, b"success", 4, True, b"1700",
    )  # fmt: skip
    assert rsp.Timestamp() is None
    assert rsp.UnsupervisedEvalFlg() == b"NOT_EVAL"
    assert rsp.FeatureMapLength() == 2
    assert rsp.FeatureMap(1).WeightFullname() == b"b"
    assert rsp.FeatureMap(0).DataAsNumpy().tolist() == [1.0, 2.0]
    fl_plan = rsp.FlPlanConfig()
    assert (fl_plan.ServerMode(), fl_plan.FlName(), fl_plan.Iterations(), fl_plan.Epochs()) == (
        b"FEDERATED_LEARNING", b"lenet", 25, 1,
    )  # fmt: skip
    assert (fl_plan.MiniBatch(), fl_plan.Lr(), fl_plan.Shuffle()) == (32, 0.5, False)
    # Spec §3.5 step 8: MindSpore never sets these.
    assert fl_plan.EarlyStop() is None
    assert fl_plan.Aggregation() is None
    assert fl_plan.MetricsIsNone()
    pub = fl_plan.Cipher()
    assert pub.EncryptType() == b"PW_ENCRYPT"
    assert pub.DpParams().DpEps() == 50.0
    pw = pub.PwParams()
    assert (pw.T(), pw.G(), pw.PLength(), pw.PrimeLength()) == (2, 1, PW_P_BYTES, PRIME_BYTES)
    assert bytes(pw.PAsNumpy()) == bytes(PW_P_BYTES)
    assert bytes(pw.PrimeAsNumpy()) == b"\x07" * PRIME_BYTES
    assert pub.DsParams() is not None


def test_response_get_model_reads_with_generated_accessors() -> None:
    buf = build_response_get_model(200, "Get model for iteration 2", 3, [("w", np.ones(3, np.float32))], "99")
    rsp = ResponseGetModel.GetRootAs(buf, 0)
    assert (rsp.Retcode(), rsp.Iteration(), rsp.Timestamp(), rsp.FeatureMapLength()) == (200, 3, b"99", 1)
    assert rsp.FeatureMap(0).DataAsNumpy().tolist() == [1.0, 1.0, 1.0]


def test_output_has_no_file_identifier() -> None:
    buf = build_request_fl_job("j", "d", 1, 1, "1")
    assert not RfjGen.RequestFLJob.RequestFLJobBufferHasIdentifier(buf, 0)
