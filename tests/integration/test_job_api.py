"""The MindSpore-compatible job API (`from mindfed import FLServerJob, ...`): servers and a scheduler started by
user scripts in subprocesses, devices driven over HTTP with our FlatBuffers builders (spec §1.1, §1.2, §13, §14)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import yaml

from mindfed import FeatureMap, FlSchedulerJob, FLServerJob, SSLConfig, log
from mindfed.cache.embedded import free_port
from mindfed.model import protobuf_wire as wire
from mindfed.model.ckpt import read_ckpt, write_ckpt
from mindfed.protocol import request_builders as rq
from mindfed.protocol.responses import parse_response_fl_job, parse_response_get_model, parse_response_update_model

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

# A launch script as MindSpore Federated users write it (their UT's feature map, spec §14); the test changes only
# its import line.
MINDSPORE_SERVER_SCRIPT = '''\
import json
import sys

import numpy as np
from mindspore_federated import FLServerJob, FeatureMap, Callback
from mindspore_federated import log as logger

yaml_config, http_server_address, checkpoint_dir, out = sys.argv[1:5]


class RecordingCallback(Callback):
    def after_started(self):
        logger.info("server started")
        open(out + "/started", "w").write("ok")

    def before_stopped(self):
        open(out + "/stopped", "w").write("ok")

    def on_iteration_end(self, context):
        features = context.feature_map.feature_map()
        record = {"iteration_num": context.iteration_num, "iteration_valid": bool(context.iteration_valid),
                  "iteration_result": context.iteration_result, "fl_name": context.fl_name,
                  "instance_name": context.instance_name, "checkpoint_file": context.checkpoint_file,
                  "features": {n: [f.data.reshape(-1).tolist(), f.require_aggr] for n, f in features.items()}}
        with open(f"{out}/iteration_{context.iteration_num}.json", "w") as f:
            json.dump(record, f)


np.random.seed(0)
feature_map = FeatureMap()
feature_map.add_feature("feature_conv", np.random.randn(2, 3).astype(np.float32), require_aggr=True)
feature_map.add_feature("feature_bn", np.random.randn(1).astype(np.float32), require_aggr=True)
feature_map.add_feature("feature_bn2", np.random.randn(1).astype(np.float32).reshape(tuple()), require_aggr=True)
feature_map.add_feature("feature_conv2", np.random.randn(2, 3).astype(np.float32), require_aggr=False)

server_job = FLServerJob(yaml_config, http_server_address, "127.0.0.1", checkpoint_dir)
server_job.run(feature_map, callback=RecordingCallback())
'''

MINDSPORE_SCHEDULER_SCRIPT = '''\
import sys
from mindspore_federated import FlSchedulerJob

FlSchedulerJob(sys.argv[1], manage_address=sys.argv[2]).run()
'''


def as_mindfed(script: str) -> str:
    """The one change a MindSpore user makes."""
    return script.replace("from mindspore_federated import", "from mindfed import")


def initial_features() -> dict[str, np.ndarray]:
    """The values MINDSPORE_SERVER_SCRIPT draws."""
    legacy = np.random.RandomState(0)  # the stream np.random.seed(0) starts, which the script uses
    return {"feature_conv": legacy.randn(2, 3).astype(np.float32),
            "feature_bn": legacy.randn(1).astype(np.float32),
            "feature_bn2": legacy.randn(1).astype(np.float32).reshape(()),
            "feature_conv2": legacy.randn(2, 3).astype(np.float32)}


def write_yaml(tmp: Path, fl_name: str, redis_address: str, **values: Any) -> Path:
    cfg = yaml.safe_load((REPO / "yamls" / "lenet.yaml").read_text())
    cfg.update(fl_name=fl_name, fl_iteration_num=values.pop("fl_iteration_num", 5))
    cfg["distributed_cache"]["address"] = redis_address
    cfg["round"].update(start_fl_job_threshold=1, start_fl_job_time_window=10000, update_model_time_window=10000,
                        global_iteration_time_window=30000)
    cfg["unsupervised"]["eval_type"] = "NOT_EVAL"
    cfg["summary"]["data_rate_dir"] = ""
    cfg.update(values)
    path = tmp / f"{fl_name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Procs:
    """Script processes of one test, stopped by their own PID."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs = tmp, list[subprocess.Popen[bytes]]()

    def start(self, name: str, script: str, *args: str) -> subprocess.Popen[bytes]:
        (self.tmp / f"{name}.py").write_text(script)
        with (self.tmp / f"{name}.log").open("wb") as log_file:
            proc = subprocess.Popen([sys.executable, f"{name}.py", *args], cwd=self.tmp, stdout=log_file,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    started = Procs(tmp_path)
    yield started
    started.stop_all()


async def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 8.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def device(port: int) -> AsyncIterator[Callable[[str, bytes], Awaitable[bytes]]]:
    async with aiohttp.ClientSession() as session:
        async def post(round_name: str, body: bytes) -> bytes:
            async with session.post(f"http://127.0.0.1:{port}/{round_name}", data=body) as resp:
                return await resp.read()
        yield post


async def scheduler_state(port: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.post(f"http://127.0.0.1:{port}/state") as resp:
        answer: dict[str, Any] = json.loads(await resp.text())
        return answer


async def scheduler_state_when_up(port: int, procs: Procs, timeout_s: float = 30.0) -> dict[str, Any]:
    """`/state` once the scheduler script listens (on a loaded machine it may start after the server)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await scheduler_state(port)
        except aiohttp.ClientConnectionError:
            assert time.monotonic() < deadline, f"scheduler not up after {timeout_s} s:\n{procs.log('sched')}"
            await asyncio.sleep(0.2)


async def test_mindspore_script_runs_with_only_its_import_changed(redis_address: str, fl_name: str,
                                                                  tmp_path: Path, procs: Procs) -> None:
    # Prepare
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    http_port, manage_port = free_port(), free_port()
    procs.start("sched", as_mindfed(MINDSPORE_SCHEDULER_SCRIPT), str(job_yaml), f"127.0.0.1:{manage_port}")
    server = procs.start("server", as_mindfed(MINDSPORE_SERVER_SCRIPT), str(job_yaml), f"127.0.0.1:{http_port}",
                         "fl_ckpt", str(tmp_path))
    await wait_until(lambda: (tmp_path / "started").exists(), "after_started")
    init = initial_features()
    upload = {n: np.full(v.shape, 3.0, np.float32) for n, v in init.items() if n != "feature_conv2"}

    # Execute: one device, one iteration
    async with device(http_port) as post:
        job = parse_response_fl_job(await post("startFLJob", rq.build_request_fl_job(fl_name, "1001", 0, 10, "1")))
        flat = [(n, v.reshape(-1)) for n, v in upload.items()]
        updated = parse_response_update_model(
            await post("updateModel", rq.build_request_update_model(fl_name, "1001", 1, flat, "1")))
        await wait_until(lambda: (tmp_path / "iteration_1.json").exists(), "on_iteration_end")
        served = parse_response_get_model(await post("getModel", rq.build_request_get_model(fl_name, 1, "1")))
    state = await scheduler_state_when_up(manage_port, procs)

    # Assert: startFLJob sends every feature, getModel only the aggregated ones
    assert (job.retcode, job.iteration) == (200, 1)
    sent = {t.name: np.asarray(t.data) for t in job.feature_map}
    assert sorted(sent) == sorted(init)
    for name, value in init.items():
        np.testing.assert_array_equal(sent[name], value.reshape(-1))
    assert updated.retcode == 200
    assert served.retcode == 200
    assert sorted(t.name for t in served.feature_map) == ["feature_bn", "feature_bn2", "feature_conv"]
    for t in served.feature_map:
        np.testing.assert_allclose(np.asarray(t.data), 3.0 / 10, rtol=1e-6)
    assert state["code"] == "0"
    assert len(state["nodes"]) == 1
    # on_iteration_end ran on this (the only) server, after the recovery checkpoint, which keeps feature_conv2
    record = json.loads((tmp_path / "iteration_1.json").read_text())
    assert (record["iteration_num"], record["iteration_valid"], record["fl_name"]) == (1, True, fl_name)
    assert record["features"]["feature_conv2"][1] is False
    np.testing.assert_array_equal(record["features"]["feature_conv2"][0], init["feature_conv2"].reshape(-1))
    checkpoint = read_ckpt(tmp_path / record["checkpoint_file"])
    np.testing.assert_array_equal(checkpoint["feature_conv2"], init["feature_conv2"])
    np.testing.assert_allclose(checkpoint["feature_conv"], np.full((2, 3), 0.3), rtol=1e-6)

    # Execute: SIGTERM stops the server cleanly
    server.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(server.wait, 15)

    # Assert
    assert code == 0, procs.log("server")
    assert (tmp_path / "stopped").exists()
    assert "nodes" not in await scheduler_state(manage_port)


async def test_restart_resumes_from_checkpoint_keeping_require_aggr(redis_address: str, fl_name: str,
                                                                    tmp_path: Path, procs: Procs) -> None:
    # Prepare: a checkpoint of iteration 2 in checkpoint_dir, as a previous run left it
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    init = initial_features()
    saved = {n: v + 1 for n, v in init.items()}
    (tmp_path / "fl_ckpt").mkdir()
    write_ckpt(tmp_path / "fl_ckpt" / f"{fl_name}_recovery_iteration_2_20240101_000000.ckpt", saved)
    port = free_port()

    # Execute
    procs.start("server", as_mindfed(MINDSPORE_SERVER_SCRIPT), str(job_yaml), f"127.0.0.1:{port}", "fl_ckpt",
                str(tmp_path))
    await wait_until(lambda: (tmp_path / "started").exists(), "after_started")
    async with device(port) as post:
        job = parse_response_fl_job(await post("startFLJob", rq.build_request_fl_job(fl_name, "1001", 0, 10, "1")))
        upload = [(n, np.ones(v.size, np.float32)) for n, v in init.items() if n != "feature_conv2"]
        await post("updateModel", rq.build_request_update_model(fl_name, "1001", 3, upload, "1"))
        await wait_until(lambda: (tmp_path / "iteration_3.json").exists(), "on_iteration_end")

    # Assert: iteration 3 starts from the checkpoint's values; feature_conv2 is still not aggregated
    assert job.iteration == 3
    sent = {t.name: np.asarray(t.data) for t in job.feature_map}
    for name, value in saved.items():
        np.testing.assert_array_equal(sent[name], value.reshape(-1))
    record = json.loads((tmp_path / "iteration_3.json").read_text())
    assert record["features"]["feature_conv2"][1] is False
    np.testing.assert_array_equal(record["features"]["feature_conv2"][0], saved["feature_conv2"].reshape(-1))


async def test_on_iteration_end_runs_on_the_summary_writer_only(redis_address: str, fl_name: str,
                                                                tmp_path: Path, procs: Procs) -> None:
    # Prepare: two servers of one job, each recording into its own folder
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        (tmp_path / f"s{i}").mkdir()
        procs.start(f"server{i}", as_mindfed(MINDSPORE_SERVER_SCRIPT), str(job_yaml), f"127.0.0.1:{port}",
                    f"fl_ckpt{i}", str(tmp_path / f"s{i}"))
        started = tmp_path / f"s{i}" / "started"
        await wait_until(started.exists, f"server {i} started")
    init = initial_features()

    # Execute: join on one server, upload on the other
    async with device(ports[0]) as post0, device(ports[1]) as post1:
        await post0("startFLJob", rq.build_request_fl_job(fl_name, "1001", 0, 10, "1"))
        upload = [(n, np.ones(v.size, np.float32)) for n, v in init.items() if n != "feature_conv2"]
        await post1("updateModel", rq.build_request_update_model(fl_name, "1001", 1, upload, "1"))
        def records() -> list[Path]:
            return [p for i in (0, 1) for p in (tmp_path / f"s{i}").glob("iteration_1.json")]
        await wait_until(lambda: bool(records()), "on_iteration_end")
        await asyncio.sleep(1.0)  # the other server has switched too by now

    # Assert
    assert len(records()) == 1


def test_parameter_errors_have_mindspore_texts(tmp_path: Path, redis_address: str, fl_name: str) -> None:
    job_yaml = str(write_yaml(tmp_path, fl_name, redis_address))
    with pytest.raises(RuntimeError, match="Parameter 'manage_address' should be str"):
        FlSchedulerJob(job_yaml, 5000)  # type: ignore[arg-type]
    for bad in ("127.0.0.1:4000x", "127.0.0.1:", "127.0.0.1", "256.0.0.1:5000"):
        with pytest.raises(RuntimeError, match="Failed to start scheduler http server, invalid server address:"):
            FlSchedulerJob(job_yaml, bad).run()
    with pytest.raises(RuntimeError, match="Parameter 'yaml_config' should be str"):
        FLServerJob(None, "127.0.0.1:3001")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="Parameter 'checkpoint_dir' should not be empty str"):
        FLServerJob(job_yaml, "127.0.0.1:3001", checkpoint_dir="")
    with pytest.raises(RuntimeError, match="invalid server address: localhost:3001"):
        FLServerJob(job_yaml, "localhost:3001")
    with pytest.raises(RuntimeError, match="Parameter 'ssl_config' should be None or instance of SSLConfig"):
        FLServerJob(job_yaml, "127.0.0.1:3001", ssl_config="pw")
    with pytest.raises(RuntimeError, match="Parameter 'callback' is expected to be instance of Callback"):
        FLServerJob(job_yaml, "127.0.0.1:3001").run(callback=object())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="no such file"):
        FLServerJob(str(tmp_path / "missing.yaml"), "127.0.0.1:3001")
    ssl = SSLConfig("server_password_12345", "client_password_12345")
    assert FLServerJob(job_yaml, "127.0.0.1:3001", ssl_config=ssl).ssl_config is ssl
    assert "password_12345" not in repr(ssl)
    log.info("log functions are callable: %s", [log.warning, log.error])


def test_feature_map_enforces_float32_and_non_empty() -> None:
    fm = FeatureMap()
    with pytest.raises(RuntimeError, match="expected to be float32, but got float64"):
        fm.add_feature("w", np.zeros(3))
    with pytest.raises(RuntimeError, match="The value size of parameter 'data' is expected to > 0"):
        fm.add_feature("w", np.zeros(0, np.float32))
    with pytest.raises(RuntimeError, match="expected to be instance of numpy.ndarray"):
        fm.add_feature("w", [1.0, 2.0])  # type: ignore[arg-type]
    item = fm.add_feature("scalar", np.array(2.0, np.float32), require_aggr=False)
    assert item.shape == ()
    assert not item.require_aggr
    assert sorted(fm.feature_map()) == ["scalar"]


def test_every_feature_map_form_becomes_model_weights(tmp_path: Path) -> None:
    from mindfed.api.feature_map import to_model_weights  # noqa: PLC0415

    fm = FeatureMap()
    fm.add_feature("b", np.ones(2, np.float32), require_aggr=False)
    fm.add_feature("a", np.zeros((2, 2), np.float32))
    weights = to_model_weights(fm)
    assert weights.names == ["a", "b"]
    assert weights.require_aggr == {"a": True, "b": False}
    assert to_model_weights({"w": np.ones(3, np.float32)}).require_aggr == {"w": True}
    with pytest.raises(RuntimeError, match="float32"):
        to_model_weights({"w": np.ones(3, np.float64)})
    ckpt = tmp_path / "lenet.ckpt"
    write_ckpt(ckpt, {"conv.weight": np.ones((2, 3), np.float32), "step": np.array([7], np.int32)})
    assert to_model_weights(str(ckpt)).names == ["conv.weight"]  # non-float32 skipped
    # a MindIR ModelProto{graph: GraphProto{parameter: [TensorProto{dims, data_type, name, raw_data}]}} (mind_ir.proto)
    bias, step = np.array([0.5, -2.0], "<f4"), np.array([7, 8], "<i4")  # dims [2] each
    parameters = b"".join(
        wire.encode_length_delimited(3, b"\x08\x02" + b"\x10" + bytes([data_type])
                                     + wire.encode_length_delimited(7, name) + wire.encode_length_delimited(9, raw))
        for name, data_type, raw in [(b"net:fc.bias", 1, bias.tobytes()), (b"net:step", 6, step.tobytes())])
    mindir = tmp_path / "lenet.mindir"
    mindir.write_bytes(wire.encode_length_delimited(2, b"MindSpore") + wire.encode_length_delimited(7, parameters))
    weights = to_model_weights(str(mindir))
    assert weights.names == ["fc.bias"]  # graph prefix dropped, int32 skipped
    np.testing.assert_array_equal(weights["fc.bias"], bias)
    with pytest.raises(RuntimeError, match="cannot read MindIR file"):
        to_model_weights(str(tmp_path / "absent.mindir"))
    with pytest.raises(RuntimeError, match="ends with '.ckpt'"):
        to_model_weights("model.onnx")
    with pytest.raises(RuntimeError, match="expected to be instance of dict"):
        to_model_weights(42)
    assert to_model_weights(None).total_floats > 0  # the default LeNet-5(62, 3)


def test_update_log_takes_a_bool_or_one_of_its_modes_and_refuses_anything_else() -> None:
    from mindfed.api.errors import JobValueError  # noqa: PLC0415 - beside the only test that needs it

    lenet = str(Path(__file__).resolve().parents[2] / "yamls" / "lenet.yaml")
    for value, mode in ((True, "on"), (False, "off"), ("on", "on"), ("off", "off"), ("replica", "replica")):
        assert FLServerJob(lenet, "127.0.0.1:6666", update_log=value).update_log == mode
    with pytest.raises(JobValueError, match="Parameter 'update_log' should be a bool or one of"):
        FLServerJob(lenet, "127.0.0.1:6666", update_log="redis")
