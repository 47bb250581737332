"""MindSpore device clients, unmodified, against a real server over a real Redis.

An independent re-implementation (no MindSpore code) of what MindSpore Federated's own device
clients put on the wire and what they require of the answers:

* the Python device simulator of their system tests (`tests/st/client_simulator/simulator.py`):
  a `requests.Session` posting raw FlatBuffers to `http://{address}/{round}`; fl_id is
  `str(random.sample(alphabet, 8))` (e.g. "['q', 'x', ...]"), fl_name is always "fl_test_job",
  timestamps are the literal "2020/11/16/19/18" (startFLJob, updateModel) and "2020/12/16/19/18"
  (getResult, getModel); startFLJob carries data_size, eval_data_size and
  download_compress_types=[0, 2] but no iteration; updateModel uploads every weight startFLJob
  sent (uniform random x 32, feature maps in reverse order) plus loss, accuracy and 10
  unsupervised eval items of 160 floats; getResult then getModel are polled every 0.5 s on
  SucNotReady or on a plain text; OutOfTime means "sleep until int(next_req_time), then
  startFLJob again"; any other code ends the process (sys.exit); a plain text answer to
  startFLJob crashes it (the function returns 2 values where the caller unpacks 5) - that
  is how it stops once the job is finished;
* the helpers of their Python server tests (`tests/ut/python/tests/common_client.py`): one-shot
  `requests.post` of a `bytearray`, getModel without download_compress_types;
* the Java device client (`FLCommunication`, `Common`, `StartFLJob`, `UpdateModel`, `GetModel`,
  `GetResult`, `SyncFLJob`): needs HTTP 2xx; a body longer than 512 bytes is a FlatBuffer,
  a shorter one is searched for the marker texts (safemode / not ready / finished) and is a
  FlatBuffer when none is found; every ResponseFLJob - refusals included - must carry
  fl_plan_config (null is a FAILED job); a SUCCEED one with NO_COMPRESS must carry at least one
  weight; OutOfTime -> wait next_req_time - now, which must be > 0 (else the job is aborted);
  updateModel must answer SUCCEED (SucNotReady is a failure there); getResult / getModel:
  SUCCEED, SucNotReady (poll), OutOfTime (restart); the job ends when the iteration of the
  last startFLJob reaches FLPlan.iterations.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest
import requests
from tests.integration.cluster import Server, running_server, ut_config, ut_model

from mindfed.protocol.generated import (
    FeatureMap,
    RequestFLJob,
    RequestGetModel,
    RequestGetResult,
    RequestUpdateModel,
    ResponseFLJob,
    ResponseGetModel,
    ResponseGetResult,
    ResponseUpdateModel,
    UnsupervisedEvalItem,
    UnsupervisedEvalItems,
)
from mindfed.server.phase import IterationPhase
from mindfed.summary.metrics_file import read_all

pytestmark = pytest.mark.integration

SUCCEED, SUC_NOT_READY, OUT_OF_TIME, REQUEST_ERROR, SYSTEM_ERROR = 200, 201, 300, 400, 500
SAFEMODE = "The cluster is in safemode."
FINISHED = "The server's training job is disabled or finished."
NOT_READY = "The server's training job is not ready."
NOT_AVAILABLE = [SAFEMODE, FINISHED]  # the simulator's exact-match list
JAVA_MARKERS = (SAFEMODE, NOT_READY, FINISHED)
JAVA_MAX_DESC_LEN = 512
WIRE_FL_NAME = "fl_test_job"  # hard-coded in the simulator, whatever the server's fl_name
TS_JOB = "2020/11/16/19/18"
TS_RESULT = "2020/12/16/19/18"
POLL_S = 0.5
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def now_ms() -> float:
    return time.time() * 1000.0


# --------------------------------------------------------------------------------------------------
# Requests, built the simulator's way (builder sizes, field order, vector order, no file identifier).
# --------------------------------------------------------------------------------------------------

def sim_start_fl_job(fl_id: str, data_size: int, eval_data_size: int) -> bytes:
    b = flatbuffers.Builder(1024)
    fl_name = b.CreateString(WIRE_FL_NAME)
    fid = b.CreateString(fl_id)
    ts = b.CreateString(TS_JOB)
    types = [0, 2]
    RequestFLJob.RequestFLJobStartDownloadCompressTypesVector(b, len(types))
    for t in reversed(types):
        b.PrependInt8(t)
    types_off = b.EndVector()
    RequestFLJob.RequestFLJobStart(b)
    RequestFLJob.RequestFLJobAddFlName(b, fl_name)
    RequestFLJob.RequestFLJobAddFlId(b, fid)
    RequestFLJob.RequestFLJobAddDataSize(b, data_size)
    RequestFLJob.RequestFLJobAddEvalDataSize(b, eval_data_size)
    RequestFLJob.RequestFLJobAddTimestamp(b, ts)
    RequestFLJob.RequestFLJobAddDownloadCompressTypes(b, types_off)
    b.Finish(RequestFLJob.RequestFLJobEnd(b))
    return memoryview(b.Output()).tobytes()


def _sim_eval_items(b: flatbuffers.Builder, rng: np.random.Generator) -> int:
    items = []
    for i in range(10):
        name = b.CreateString("eval_name_" + str(i))
        UnsupervisedEvalItem.UnsupervisedEvalItemStartEvalDataVector(b, 160)
        data = rng.random(160)
        for j in range(160):
            b.PrependFloat32(data[j])
        data_off = b.EndVector()
        UnsupervisedEvalItem.UnsupervisedEvalItemStart(b)
        UnsupervisedEvalItem.UnsupervisedEvalItemAddEvalData(b, data_off)
        UnsupervisedEvalItem.UnsupervisedEvalItemAddEvalName(b, name)
        items.append(UnsupervisedEvalItem.UnsupervisedEvalItemEnd(b))
    UnsupervisedEvalItems.UnsupervisedEvalItemsStartEvalItemsVector(b, len(items))
    for item in items:
        b.PrependUOffsetTRelative(item)
    vec = b.EndVector()
    UnsupervisedEvalItems.UnsupervisedEvalItemsStart(b)
    UnsupervisedEvalItems.UnsupervisedEvalItemsAddEvalItems(b, vec)
    return UnsupervisedEvalItems.UnsupervisedEvalItemsEnd(b)


def sim_update_model(fl_id: str, iteration: int, upload: dict[bytes, np.ndarray], loss: float, accuracy: float,
                     rng: np.random.Generator) -> bytes:
    b = flatbuffers.Builder(1)
    fl_name = b.CreateString(WIRE_FL_NAME)
    fid = b.CreateString(fl_id)
    ts = b.CreateString(TS_JOB)
    maps = []
    for name, value in upload.items():
        name_off = b.CreateString(name)
        FeatureMap.FeatureMapStartDataVector(b, len(value))
        for idx in range(len(value) - 1, -1, -1):
            b.PrependFloat32(value[idx])
        data_off = b.EndVector()
        FeatureMap.FeatureMapStart(b)
        FeatureMap.FeatureMapAddData(b, data_off)
        FeatureMap.FeatureMapAddWeightFullname(b, name_off)
        maps.append(FeatureMap.FeatureMapEnd(b))
    RequestUpdateModel.RequestUpdateModelStartFeatureMapVector(b, len(upload))
    for m in maps:  # forward prepend: the wire order is the reverse of the received one
        b.PrependUOffsetTRelative(m)
    fm_off = b.EndVector()
    eval_off = _sim_eval_items(b, rng)
    RequestUpdateModel.RequestUpdateModelStart(b)
    RequestUpdateModel.RequestUpdateModelAddFlName(b, fl_name)
    RequestUpdateModel.RequestUpdateModelAddFlId(b, fid)
    RequestUpdateModel.RequestUpdateModelAddIteration(b, iteration)
    RequestUpdateModel.RequestUpdateModelAddFeatureMap(b, fm_off)
    RequestUpdateModel.RequestUpdateModelAddTimestamp(b, ts)
    RequestUpdateModel.RequestUpdateModelAddUploadLoss(b, loss)
    RequestUpdateModel.RequestUpdateModelAddUploadAccuracy(b, accuracy)
    RequestUpdateModel.RequestUpdateModelAddUnsupervisedEvalItems(b, eval_off)
    b.Finish(RequestUpdateModel.RequestUpdateModelEnd(b))
    return memoryview(b.Output()).tobytes()


def sim_get_result(iteration: int) -> bytes:
    b = flatbuffers.Builder(1)
    fl_name = b.CreateString(WIRE_FL_NAME)
    ts = b.CreateString(TS_RESULT)
    RequestGetResult.RequestGetResultStart(b)
    RequestGetResult.RequestGetResultAddFlName(b, fl_name)
    RequestGetResult.RequestGetResultAddTimestamp(b, ts)
    RequestGetResult.RequestGetResultAddIteration(b, iteration)
    b.Finish(RequestGetResult.RequestGetResultEnd(b))
    return memoryview(b.Output()).tobytes()


def sim_get_model(iteration: int, download_compress_types: tuple[int, ...] | None = (0, 2),
                  timestamp: str = TS_RESULT, size: int = 1) -> bytearray:
    b = flatbuffers.Builder(size)
    fl_name = b.CreateString(WIRE_FL_NAME)
    ts = b.CreateString(timestamp)
    types_off = None
    if download_compress_types:
        RequestGetModel.RequestGetModelStartDownloadCompressTypesVector(b, len(download_compress_types))
        for t in reversed(download_compress_types):
            b.PrependInt8(t)
        types_off = b.EndVector()
    RequestGetModel.RequestGetModelStart(b)
    RequestGetModel.RequestGetModelAddFlName(b, fl_name)
    RequestGetModel.RequestGetModelAddIteration(b, iteration)
    RequestGetModel.RequestGetModelAddTimestamp(b, ts)
    if types_off is not None:
        RequestGetModel.RequestGetModelAddDownloadCompressTypes(b, types_off)
    b.Finish(RequestGetModel.RequestGetModelEnd(b))
    return b.Output()


def java_start_fl_job(fl_name: str, fl_id: str, iteration: int, data_size: int) -> bytes:
    """Java's RequestStartFLJobBuilder: ms timestamp, last known iteration, no eval_data_size."""
    b = flatbuffers.Builder(1024)
    name = b.CreateString(fl_name)
    ts = b.CreateString(str(int(now_ms())))
    fid = b.CreateString(fl_id)
    RequestFLJob.RequestFLJobStartDownloadCompressTypesVector(b, 1)
    b.PrependInt8(0)
    types_off = b.EndVector()
    RequestFLJob.RequestFLJobStart(b)
    RequestFLJob.RequestFLJobAddFlName(b, name)
    RequestFLJob.RequestFLJobAddFlId(b, fid)
    RequestFLJob.RequestFLJobAddIteration(b, iteration)
    RequestFLJob.RequestFLJobAddDataSize(b, data_size)
    RequestFLJob.RequestFLJobAddTimestamp(b, ts)
    RequestFLJob.RequestFLJobAddDownloadCompressTypes(b, types_off)
    b.Finish(RequestFLJob.RequestFLJobEnd(b))
    return bytes(b.Output())


# --------------------------------------------------------------------------------------------------
# The Java client's rules, applied to any response body.
# --------------------------------------------------------------------------------------------------

@dataclass
class Answer:
    round: str
    body: bytes
    received_ms: float


def java_problems(answers: list[Answer], fl_iteration_num: int) -> list[str]:
    """Every way these answers would derail the Java device client (empty when none)."""
    problems: list[str] = []
    for a in answers:
        where = f"{a.round} ({len(a.body)} B)"
        text_like = len(a.body) <= JAVA_MAX_DESC_LEN
        markers = [m for m in JAVA_MARKERS if text_like and m.encode() in a.body]
        is_plain = a.body.decode("utf-8", "replace") in NOT_AVAILABLE + [NOT_READY]
        if is_plain:
            continue  # Java: safemode -> wait and retry; finished -> stop
        if markers:
            problems.append(f"{where}: FlatBuffer of <= 512 bytes contains the marker {markers!r}")
        try:
            if a.round == "startFLJob":
                r = ResponseFLJob.ResponseFLJob.GetRootAsResponseFLJob(a.body, 0)
                code = r.Retcode()
                if r.FlPlanConfig() is None:
                    problems.append(f"{where}: retcode {code} ({r.Reason()!r}) without fl_plan_config: the Java "
                                    "client fails the job (StartFLJob.doResponse) instead of restarting")
                elif code == SUCCEED:
                    plan = r.FlPlanConfig()
                    if plan.Iterations() != fl_iteration_num:
                        problems.append(f"{where}: FLPlan.iterations {plan.Iterations()} != {fl_iteration_num}")
                    if plan.Cipher() is None:
                        problems.append(f"{where}: FLPlan.cipher is null (setGlobalParameters fails)")
                    if r.DownloadCompressType() == 0 and r.FeatureMapLength() <= 0:
                        problems.append(f"{where}: SUCCEED with no weights")
                    if not r.IsSelected():
                        problems.append(f"{where}: SUCCEED but is_selected false")
                if code not in (SUCCEED, OUT_OF_TIME, REQUEST_ERROR, SYSTEM_ERROR):
                    problems.append(f"{where}: retcode {code} is a failure for Java")
                if code == OUT_OF_TIME:
                    problems += _wait_time_problems(where, r.NextReqTime(), a.received_ms)
            elif a.round == "updateModel":
                r = ResponseUpdateModel.ResponseUpdateModel.GetRootAsResponseUpdateModel(a.body, 0)
                if r.Retcode() == SUC_NOT_READY:
                    problems.append(f"{where}: SucNotReady is a failure for Java's updateModel")
                if r.Retcode() == OUT_OF_TIME:
                    problems += _wait_time_problems(where, r.NextReqTime(), a.received_ms)
            elif a.round in ("getModel", "getResult"):
                cls: Any = ResponseGetModel.ResponseGetModel if a.round == "getModel" else \
                    ResponseGetResult.ResponseGetResult
                r = cls.GetRootAs(a.body, 0)
                if r.Retcode() not in (SUCCEED, SUC_NOT_READY, OUT_OF_TIME):
                    problems.append(f"{where}: retcode {r.Retcode()} is a failure for Java")
                if r.Retcode() == OUT_OF_TIME:
                    problems += _wait_time_problems(where, r.Timestamp(), a.received_ms)
        except Exception as exc:  # noqa: BLE001 - a body Java could not read at all
            problems.append(f"{where}: unreadable FlatBuffer: {exc!r}")
    return problems


def _wait_time_problems(where: str, next_req_time: bytes | None, received_ms: float) -> list[str]:
    try:
        wait = int((next_req_time or b"").decode()) - received_ms
    except ValueError:
        return [f"{where}: OutOfTime next_req_time {next_req_time!r} is not a decimal ms timestamp"]
    if wait <= 0:
        return [f"{where}: OutOfTime next_req_time is {-wait:.0f} ms in the past: Common.getWaitTime aborts"]
    return []


# --------------------------------------------------------------------------------------------------
# The simulator's device loop.
# --------------------------------------------------------------------------------------------------

class Restart(Exception):
    def __init__(self, next_ts: float) -> None:
        super().__init__(next_ts)
        self.next_ts = next_ts


@dataclass
class SimulatedDevice:
    """One `simulator.py` process; `run()` is its `__main__` loop, bounded by a deadline."""

    address: str
    seed: int
    data_size: int = 32
    eval_data_size: int = 32
    upload_loss: float = 1.0
    upload_accuracy: float = 1.0
    fl_id: str = ""
    answers: list[Answer] = field(default_factory=list)
    events: list[tuple[str, Any]] = field(default_factory=list)
    uploads: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # accepted, per iteration
    job_models: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # startFLJob weights
    got_models: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # getModel weights
    start_attempts: list[tuple[float, int | None]] = field(default_factory=list)  # (sent ms, next_req_time if refused)
    outcome: str = ""

    def __post_init__(self) -> None:
        self._rand = random.Random(self.seed)
        self._rng = np.random.default_rng(self.seed)
        self.fl_id = str(self._rand.sample(ALPHABET, 8))  # "['k', 'e', ...]", as the simulator
        self._session = requests.Session()

    def _post(self, round_name: str, body: bytes) -> requests.Response:
        x = self._session.post(f"http://{self.address}/{round_name}", data=body, verify=False)
        self.answers.append(Answer(round_name, x.content, now_ms()))
        assert x.status_code == 200, (round_name, x.status_code, x.content[:200])
        return x

    def start_fl_job(self) -> tuple[int, dict[bytes, np.ndarray], int, float]:
        sent_ms = now_ms()
        x = self._post("startFLJob", sim_start_fl_job(self.fl_id, self.data_size, self.eval_data_size))
        self.start_attempts.append((sent_ms, None))
        if x.text in NOT_AVAILABLE:
            # simulator.py returns (result, iteration) here and its caller unpacks five values:
            # the process dies with ValueError. Against a finished job that is its normal end.
            raise SystemExit(f"startFLJob plain text: {x.text}")
        rsp = ResponseFLJob.ResponseFLJob.GetRootAsResponseFLJob(x.content, 0)
        iteration = rsp.Iteration()
        if rsp.Retcode() != SUCCEED:
            if rsp.Retcode() == OUT_OF_TIME:
                self.events.append(("startFLJob OutOfTime", rsp.Reason()))
                next_req_time = int(rsp.NextReqTime().decode("utf-8"))
                self.start_attempts[-1] = (sent_ms, next_req_time)
                raise Restart(next_req_time)
            raise SystemExit(f"startFLJob retcode {rsp.Retcode()}: {rsp.Reason()!r}")
        download = rsp.DownloadCompressType()
        weights: dict[bytes, np.ndarray] = {}
        if download == 0:
            for i in range(rsp.FeatureMapLength()):
                weights[rsp.FeatureMap(i).WeightFullname()] = rsp.FeatureMap(i).DataAsNumpy()
        elif download == 2:
            for i in range(rsp.CompressFeatureMapLength()):
                cfm = rsp.CompressFeatureMap(i)
                if cfm is not None:
                    weights[cfm.WeightFullname()] = cfm.CompressDataAsNumpy()
        else:
            raise SystemExit(f"download_compress_type {download} is invalid")
        self.job_models[iteration] = {k.decode(): np.array(v, np.float32) for k, v in weights.items()}
        return iteration, weights, rsp.UploadCompressType(), rsp.UploadSparseRate()

    def update_model(self, iteration: int, weights: dict[bytes, np.ndarray], upload_compress_type: int) -> None:
        if upload_compress_type != 0:
            raise SystemExit(f"upload_compress_type {upload_compress_type}: not exercised here")
        upload = {name: self._rng.random(len(value)) * 32 for name, value in weights.items()}
        x = self._post("updateModel", sim_update_model(self.fl_id, iteration, upload, self.upload_loss,
                                                       self.upload_accuracy, self._rng))
        if x.text in NOT_AVAILABLE:
            self.events.append(("updateModel plain text", x.text))
            raise Restart(now_ms() + 500)
        rsp = ResponseUpdateModel.ResponseUpdateModel.GetRootAsResponseUpdateModel(x.content, 0)
        if rsp.Retcode() != SUCCEED:
            if rsp.Retcode() == OUT_OF_TIME:
                self.events.append(("updateModel OutOfTime", rsp.Reason()))
                raise Restart(int(rsp.NextReqTime().decode("utf-8")))
            raise SystemExit(f"updateModel retcode {rsp.Retcode()}: {rsp.Reason()!r}")
        self.uploads[iteration] = {k.decode(): v.astype(np.float32) for k, v in upload.items()}

    def _poll(self, round_name: str, build: Callable[[], bytes], parse: Callable[[bytes], Any]) -> Any:
        while True:
            x = self._post(round_name, build())
            if x.text in NOT_AVAILABLE:
                self.events.append((f"{round_name} plain text", x.text))
                time.sleep(POLL_S)
                continue
            rsp = parse(x.content)
            if rsp.Retcode() == SUCCEED:
                return rsp
            if rsp.Retcode() == SUC_NOT_READY:
                time.sleep(POLL_S)
                continue
            raise SystemExit(f"{round_name} retcode {rsp.Retcode()}: {rsp.Reason()!r}")

    def get_result(self, iteration: int) -> None:
        self._poll("getResult", lambda: sim_get_result(iteration),
                   lambda c: ResponseGetResult.ResponseGetResult.GetRootAsResponseGetResult(c, 0))

    def get_model(self, iteration: int) -> None:
        rsp = self._poll("getModel", lambda: memoryview(sim_get_model(iteration)).tobytes(),
                         lambda c: ResponseGetModel.ResponseGetModel.GetRootAsResponseGetModel(c, 0))
        if rsp.DownloadCompressType() != 0:
            raise SystemExit(f"getModel download_compress_type {rsp.DownloadCompressType()}")
        self.got_models[iteration] = {rsp.FeatureMap(i).WeightFullname().decode():
                                      np.array(rsp.FeatureMap(i).DataAsNumpy(), np.float32)
                                      for i in range(rsp.FeatureMapLength())}

    def run(self, deadline: float) -> None:
        try:
            while True:
                if time.monotonic() > deadline:
                    self.outcome = "deadline"
                    return
                try:
                    iteration, weights, compress, _ = self.start_fl_job()
                    self.update_model(iteration, weights, compress)
                    self.get_result(iteration)
                    self.get_model(iteration)
                except Restart as r:
                    duration = r.next_ts - now_ms()
                    if duration >= 0:
                        time.sleep(min(duration, max(0.0, (deadline - time.monotonic()) * 1000)) / 1000)
        except SystemExit as exc:
            self.outcome = str(exc)
        except Exception as exc:  # noqa: BLE001 - the simulator would die with this traceback
            self.outcome = f"crash: {exc!r}"
        finally:
            self._session.close()


async def run_devices(devices: list[SimulatedDevice], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    await asyncio.gather(*(asyncio.to_thread(d.run, deadline) for d in devices))


def _address(server: Server) -> str:
    return f"127.0.0.1:{server.node.port}"


def _check_aggregates(devices: list[SimulatedDevice], aggregated: list[str], iterations: int) -> None:
    """getModel(i) and the next startFLJob carry sum(uploads) / sum(data_size) of the devices admitted in i."""
    for it in range(1, iterations + 1):
        ups = [(d.uploads[it], d.data_size) for d in devices if it in d.uploads]
        assert ups, f"nobody uploaded in iteration {it}"
        expected = {n: sum(u[n] for u, _ in ups) / sum(s for _, s in ups) for n in aggregated}
        for d in devices:
            for source in (d.got_models.get(it), d.job_models.get(it + 1)):
                if source is None:
                    continue
                for n in aggregated:
                    np.testing.assert_allclose(source[n], expected[n], rtol=1e-5, err_msg=f"it {it} {n}")


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("eval_type", ["NOT_EVAL", "SILHOUETTE_SCORE"])
async def test_three_simulators_run_the_whole_job(redis_address: str, fl_name: str, tmp_path: Path,
                                                  eval_type: str) -> None:
    """Three simulator processes, all admitted every iteration, run the job to its end."""
    iterations = 4
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{
        "fl_iteration_num": iterations, "round.start_fl_job_threshold": 3,
        "round.start_fl_job_time_window": 8000, "round.update_model_time_window": 8000,
        "round.global_iteration_time_window": 30000, "unsupervised.eval_type": eval_type,
        "unsupervised.cluster_client_num": 3})
    async with running_server(cfg, model, tmp_path) as server:
        devices = [SimulatedDevice(_address(server), seed=s, data_size=ds, upload_loss=loss)
                   for s, ds, loss in ((11, 32, 1.0), (12, 10, 2.0), (13, 50, 3.0))]
        assert len({d.fl_id for d in devices}) == 3
        assert all(d.fl_id.startswith("['") for d in devices)
        await run_devices(devices, timeout_s=90)

    for d in devices:
        # The simulator's only way out: startFLJob answered with the finished text (then ValueError).
        assert d.outcome == f"startFLJob plain text: {FINISHED}", (d.fl_id, d.outcome, d.events)
        assert sorted(d.uploads) == list(range(1, iterations + 1)), (d.fl_id, d.events)
        assert sorted(d.got_models) == list(range(1, iterations + 1))
        # startFLJob iteration is the server's current one, 1-based; getResult/getModel use it.
        assert sorted(d.job_models) == list(range(1, iterations + 1))
        # No startFLJob of a running job was ever answered with the safemode text (it would kill the simulator).
        assert all(e[0] != "startFLJob plain text" for e in d.events)
        # startFLJob sends every weight, the non-aggregated one included, and the simulator uploads them all.
        assert set(d.job_models[1]) == set(model.names)
        for it in range(1, iterations + 1):
            assert set(d.got_models[it]) == set(model.aggregated_names)  # getModel: aggregated weights only
            np.testing.assert_allclose(d.job_models[it]["feature_conv2"], model["feature_conv2"].reshape(-1))
        np.testing.assert_allclose(d.job_models[1]["feature_conv"], model["feature_conv"].reshape(-1), rtol=1e-6)
    _check_aggregates(devices, list(model.aggregated_names), iterations)

    answers = [a for d in devices for a in d.answers]
    assert java_problems(answers, iterations) == []
    lines = read_all(tmp_path / "metrics.json")
    assert [line["currentIteration"] for line in lines] == list(range(1, iterations + 1))
    assert all(line["iterationResult"] == "success" for line in lines), lines
    # loss of the iteration = sum(loss_k * data_size_k) / sum(data_size_k)
    expected_loss = (1.0 * 32 + 2.0 * 10 + 3.0 * 50) / 92
    assert all(abs(line["metricsLoss"] - expected_loss) < 1e-5 for line in lines), lines


async def test_simulator_turned_away_waits_for_next_req_time(redis_address: str, fl_name: str,
                                                             tmp_path: Path) -> None:
    """Three simulators, two admitted per iteration: the third one sleeps until next_req_time and retries."""
    iterations = 10
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{
        "fl_iteration_num": iterations, "round.start_fl_job_threshold": 2,
        "round.start_fl_job_time_window": 1500, "round.update_model_time_window": 1500,
        "round.global_iteration_time_window": 10000})
    async with running_server(cfg, model, tmp_path) as server:
        devices = [SimulatedDevice(_address(server), seed=s) for s in (21, 22, 23)]
        await run_devices(devices, timeout_s=90)

    outcomes = [d.outcome for d in devices]
    assert all(o == f"startFLJob plain text: {FINISHED}" for o in outcomes), [(d.outcome, d.events) for d in devices]
    turned_away = [e for d in devices for e in d.events if e[0] == "startFLJob OutOfTime"]
    assert turned_away, "nobody was turned away although only two devices fit an iteration"
    per_iteration = {it: sum(it in d.uploads for d in devices) for it in range(1, iterations + 1)}
    assert all(n == 2 for n in per_iteration.values()), per_iteration
    # Every device turned away came back, and not before its next_req_time. Whether it then wins a seat is a race
    # with the two devices that just finished an iteration (they ask again at once): it is not asserted.
    for d in devices:
        for (_, next_req_time), (retry_ms, _) in itertools.pairwise(d.start_attempts):
            if next_req_time is not None:
                assert retry_ms >= next_req_time - 2, (d.fl_id, next_req_time, retry_ms)
    assert all(d.start_attempts[-1][1] is None for d in devices)  # the last answer was the finished text
    lines = read_all(tmp_path / "metrics.json")
    assert [line["iterationResult"] for line in lines] == ["success"] * iterations, lines
    _check_aggregates(devices, list(model.aggregated_names), iterations)
    problems = java_problems([a for d in devices for a in d.answers], iterations)
    assert problems == [], "\n".join(problems)


async def test_ut_client_style_requests(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    """common_client.py: one-shot requests.post of a bytearray, getModel without download_compress_types."""
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"fl_iteration_num": 2})
    async with running_server(cfg, model, tmp_path) as server:
        url = f"http://{_address(server)}/"

        def one_iteration(it: int) -> None:
            b = flatbuffers.Builder(1024)
            name, fid, ts = b.CreateString(fl_name), b.CreateString("1001"), b.CreateString(TS_JOB)
            RequestFLJob.RequestFLJobStart(b)
            RequestFLJob.RequestFLJobAddFlName(b, name)
            RequestFLJob.RequestFLJobAddFlId(b, fid)
            RequestFLJob.RequestFLJobAddDataSize(b, 32)
            RequestFLJob.RequestFLJobAddTimestamp(b, ts)
            b.Finish(RequestFLJob.RequestFLJobEnd(b))
            x = requests.post(url + "startFLJob", data=b.Output())  # a bytearray, as theirs
            rsp = ResponseFLJob.ResponseFLJob.GetRootAsResponseFLJob(x.content, 0)
            assert (rsp.Retcode(), rsp.Iteration(), rsp.IsSelected()) == (SUCCEED, it, True)
            assert (rsp.DownloadCompressType(), rsp.UploadCompressType()) == (0, 0)
            upload = {n: np.full(model.sizes[n], 2.0 * it, np.float32) for n in model.aggregated_names}
            body = sim_update_model("1001", it, {n.encode(): v for n, v in upload.items()}, 0.0, 0.0,
                                    np.random.default_rng(0))
            x = requests.post(url + "updateModel", data=bytearray(body))
            rum = ResponseUpdateModel.ResponseUpdateModel.GetRootAsResponseUpdateModel(x.content, 0)
            assert (rum.Retcode(), rum.Reason()) == (SUCCEED, b"success not ready")
            for _ in range(100):
                x = requests.post(url + "getModel", data=sim_get_model(it, None, TS_JOB, 1024))
                if x.text not in NOT_AVAILABLE:
                    rgm = ResponseGetModel.ResponseGetModel.GetRootAsResponseGetModel(x.content, 0)
                    if rgm.Retcode() == SUCCEED:
                        break
                time.sleep(0.05)
            got = {rgm.FeatureMap(i).WeightFullname().decode(): rgm.FeatureMap(i).DataAsNumpy()
                   for i in range(rgm.FeatureMapLength())}
            assert set(got) == set(model.aggregated_names)
            for n in got:
                np.testing.assert_allclose(got[n], 2.0 * it / 32, rtol=1e-6)

        for it in (1, 2):
            await asyncio.to_thread(one_iteration, it)
            await server.wait_iteration(it + 1)
        x = await asyncio.to_thread(requests.post, url + "startFLJob",
                                    data=sim_start_fl_job("1001", 32, 32))
        assert x.text == FINISHED  # exact string: their helpers compare with `in [..]`


async def test_refusals_follow_the_java_client_rules(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    """Every refusal a Java device can meet must let it restart (FLPlan present, next_req_time in the future)."""
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"fl_iteration_num": 3, "round.start_fl_job_threshold": 2})
    java_headers = {"Content-Type": "applicatiom/json;charset=utf-8"}  # sic, FLCommunication.java
    async with running_server(cfg, model, tmp_path) as server:
        answers: list[Answer] = []

        async def post(round_name: str, body: bytes) -> bytes:
            async with server.session.post(server.url + round_name, data=body, headers=java_headers) as resp:
                assert resp.status == 200  # okhttp: anything but 2xx is an IOException
                out = await resp.read()
            answers.append(Answer(round_name, out, now_ms()))
            return out

        def fl_job(body: bytes) -> Any:
            return ResponseFLJob.ResponseFLJob.GetRootAsResponseFLJob(body, 0)

        ok = fl_job(await post("startFLJob", java_start_fl_job("com.mindspore.flclient.demo.lenet.LenetClient",
                                                               "java-1", 0, 16)))
        assert (ok.Retcode(), ok.Iteration()) == (SUCCEED, 1)
        again = fl_job(await post("startFLJob", java_start_fl_job("x", "java-1", 1, 16)))
        assert again.Retcode() == OUT_OF_TIME  # same fl_id twice in one iteration
        empty = fl_job(await post("startFLJob", java_start_fl_job("x", "java-2", 1, 0)))
        assert empty.Retcode() == OUT_OF_TIME  # data size 0
        assert fl_job(await post("startFLJob", java_start_fl_job("x", "java-3", 1, 16))).Retcode() == SUCCEED
        full = fl_job(await post("startFLJob", java_start_fl_job("x", "java-4", 1, 16)))
        assert full.Retcode() == OUT_OF_TIME  # threshold reached

        def um(fl_id: str, iteration: int) -> bytes:
            upload = {n.encode(): np.ones(model.sizes[n]) for n in model.names}  # Java uploads every weight
            return sim_update_model(fl_id, iteration, upload, 0.5, 0.5, np.random.default_rng(1))

        def um_rsp(body: bytes) -> Any:
            return ResponseUpdateModel.ResponseUpdateModel.GetRootAsResponseUpdateModel(body, 0)

        assert um_rsp(await post("updateModel", um("java-9", 1))).Retcode() == OUT_OF_TIME  # never joined
        assert um_rsp(await post("updateModel", um("java-1", 2))).Retcode() == OUT_OF_TIME  # wrong iteration
        gr = ResponseGetResult.ResponseGetResult.GetRootAs(await post("getResult", sim_get_result(1)), 0)
        assert gr.Retcode() == SUC_NOT_READY
        gm = ResponseGetModel.ResponseGetModel.GetRootAs(await post("getModel", bytes(sim_get_model(1))), 0)
        assert gm.Retcode() == SUC_NOT_READY
        assert um_rsp(await post("updateModel", um("java-1", 1))).Retcode() == SUCCEED
        assert um_rsp(await post("updateModel", um("java-3", 1))).Retcode() == SUCCEED
        await server.wait_iteration(2)
        gr = ResponseGetResult.ResponseGetResult.GetRootAs(await post("getResult", sim_get_result(1)), 0)
        assert gr.Retcode() == SUCCEED
        gm = ResponseGetModel.ResponseGetModel.GetRootAs(await post("getModel", bytes(sim_get_model(1))), 0)
        assert (gm.Retcode(), gm.FeatureMapLength()) == (SUCCEED, len(model.aggregated_names))

    problems = java_problems(answers, 3)
    assert problems == [], "\n".join(problems)


async def test_plain_texts_are_exact_and_short(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    """The simulator compares `response.text` for equality: no newline, no JSON, no charset surprises."""
    cfg = ut_config(redis_address, fl_name, **{"fl_iteration_num": 1})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        state = server.node.state
        state.phase.enter(IterationPhase.SWITCHING, state.iteration)  # as during an iteration switch
        try:
            x = await asyncio.to_thread(requests.post, f"http://{_address(server)}/startFLJob",
                                        data=sim_start_fl_job("['a']", 32, 32))
        finally:
            state.phase.enter(IterationPhase.RUNNING, state.iteration)
        assert (x.status_code, x.text) == (200, SAFEMODE)
        assert len(x.content) <= JAVA_MAX_DESC_LEN
        body = await server.post("startFLJob", sim_start_fl_job("['a']", 32, 32))
        assert len(body) > JAVA_MAX_DESC_LEN  # the success ResponseFLJob of this model is read as a FlatBuffer
