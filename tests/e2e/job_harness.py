"""Jobs started through the MindSpore-compatible API in forked processes, and a device and an operator that talk to
them over HTTP: the pattern of MindSpore Federated's own server and scheduler tests (spec §14), in our words.

A server job reports `after_started` through a Pipe, a start error comes back pickled through the same Pipe, and
every process is stopped by its own PID (SIGTERM first, as an operator would).
"""

from __future__ import annotations

import json
import multiprocessing
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mindfed import Callback, FeatureMap, FlSchedulerJob, FLServerJob
from mindfed.cache.embedded import free_port
from mindfed.protocol import request_builders as rq
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.plain_text import classify_plain_text
from mindfed.protocol.responses import (
    parse_response_fl_job,
    parse_response_get_model,
    parse_response_get_result,
    parse_response_update_model,
)

REPO = Path(__file__).resolve().parents[2]
FORK = multiprocessing.get_context("fork")  # what MindSpore's harness gets on Linux
SAFEMODE = "The cluster is in safemode."
FINISHED = "The server's training job is disabled or finished."
SUCCEED, SUC_NOT_READY = int(ResponseCode.SUCCEED), int(ResponseCode.SucNotReady)
REQUEST_ERROR, OUT_OF_TIME = int(ResponseCode.RequestError), int(ResponseCode.OutOfTime)


def write_yaml(tmp: Path, fl_name: str, redis_address: str, name: str = "job", **rounds: Any) -> str:
    """The job YAML of MindSpore's tests (windows 10/10/30 s, 5 iterations), with `round.*` values overridden,
    plus `fl_iteration_num` and `unsupervised` given as keywords; metrics go to `tmp`."""
    cfg = yaml.safe_load((REPO / "yamls" / "lenet.yaml").read_text())
    cfg.update(fl_name=fl_name, fl_iteration_num=rounds.pop("fl_iteration_num", 5))
    cfg["distributed_cache"]["address"] = redis_address
    cfg["unsupervised"].update(rounds.pop("unsupervised", {"eval_type": "NOT_EVAL"}))
    cfg["round"].update(start_fl_job_threshold=1, start_fl_job_time_window=10000, update_model_ratio=1.0,
                        update_model_time_window=10000, global_iteration_time_window=30000)
    cfg["round"].update(rounds)
    cfg["summary"].update(data_rate_dir="", metrics_file=str(tmp / "metrics.json"),
                          failure_event_file=str(tmp / "event.txt"))
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def initial_features(seed: int) -> dict[str, np.ndarray]:
    """MindSpore's test model: a 2×3 conv, a 1-element bn, a 0-d scalar and a second 2×3 conv."""
    rng = np.random.default_rng(seed)
    return {"feature_conv": rng.standard_normal((2, 3)).astype(np.float32),
            "feature_bn": rng.standard_normal(1).astype(np.float32),
            "feature_bn2": np.array(rng.standard_normal(), np.float32),
            "feature_conv2": rng.standard_normal((2, 3)).astype(np.float32)}


NOT_AGGREGATED = "feature_conv2"  # the test model's require_aggr=False weight


def feature_map(seed: int) -> FeatureMap:
    fm = FeatureMap()
    for name, value in initial_features(seed).items():
        fm.add_feature(name, value, require_aggr=name != NOT_AGGREGATED)
    return fm


def wait_message(proc: BaseProcess, pipe: Connection, timeout_s: float = 20) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pipe.poll(0.1):
            return pipe.recv()
        assert proc.is_alive(), f"job process exited with {proc.exitcode}"
    raise AssertionError(f"no message from the job within {timeout_s} s")


class Jobs:
    """Job processes of one test; each is stopped by its own PID."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[BaseProcess] = []

    def server(self, yaml_config: str, port: int, fm: object, ckpt: str = "ckpt", **job_kw: Any) -> BaseProcess:
        """Starts `FLServerJob(...).run(fm)`; returns once `after_started` ran, or raises the job's start error."""
        send, recv = FORK.Pipe()

        class FlCallback(Callback):
            def after_started(self) -> None:
                send.send("Success")

        def run() -> None:
            try:
                FLServerJob(yaml_config, f"127.0.0.1:{port}", "127.0.0.1", str(self.tmp / ckpt),
                            output_dir=str(self.tmp), **job_kw).run(fm, callback=FlCallback())
            except Exception as exc:  # noqa: BLE001 - sent to the test, as MindSpore's harness does
                send.send(exc)

        proc = FORK.Process(target=run)
        proc.start()
        self.procs.append(proc)
        message = wait_message(proc, recv)
        if isinstance(message, Exception):
            raise message
        return proc

    def scheduler(self, yaml_config: str, address: object) -> BaseProcess:
        """Starts `FlSchedulerJob(...).run()`; returns once `/state` answers, or raises the job's start error."""
        send, recv = FORK.Pipe()

        def run() -> None:
            try:
                FlSchedulerJob(yaml_config, manage_address=address).run()  # type: ignore[arg-type]
                send.send("Success")
            except Exception as exc:  # noqa: BLE001 - as above
                send.send(exc)

        proc = FORK.Process(target=run)
        proc.start()
        self.procs.append(proc)
        if isinstance(address, str) and address.rpartition(":")[2].isdigit():
            port = int(address.rpartition(":")[2])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not recv.poll(0.05):
                try:
                    manage(port, "state")
                    return proc
                except OSError:
                    pass
        message = wait_message(proc, recv, 5)
        if isinstance(message, Exception):
            raise message
        return proc

    @staticmethod
    def stop(proc: BaseProcess) -> int | None:
        """SIGTERM, as MindSpore's harness stops a job; the exit code (0: a clean stop)."""
        proc.terminate()
        proc.join(15)
        return proc.exitcode

    @staticmethod
    def kill(proc: BaseProcess) -> None:
        proc.kill()
        proc.join(10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(10)


def ports(n: int) -> list[int]:
    return [free_port() for _ in range(n)]


# --- the device side -------------------------------------------------------------------------------------------------

def post(port: int, route: str, body: bytes) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/{route}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        data: bytes = resp.read()
        return data


def _answer(body: bytes, parse: Callable[[bytes], Any]) -> Any:
    """A plain text (str) or the parsed FlatBuffer."""
    return body.decode() if classify_plain_text(body) else parse(body)


def start_fl_job(port: int, fl_name: str, fl_id: str, data_size: int = 32) -> Any:
    return _answer(post(port, "startFLJob", rq.build_request_fl_job(fl_name, fl_id, 0, data_size, "1")),
                   parse_response_fl_job)


def update_model(port: int, fl_name: str, fl_id: str, iteration: int, weights: Mapping[str, np.ndarray],
                 loss: float = 0.0, eval_data: list[float] | None = None) -> Any:
    items = [("eval_data", eval_data)] if eval_data else []
    body = rq.build_request_update_model(fl_name, fl_id, iteration, list(weights.items()), "1", upload_loss=loss,
                                         unsupervised_eval_items=items)
    return _answer(post(port, "updateModel", body), parse_response_update_model)


def get_model(port: int, fl_name: str, iteration: int) -> Any:
    return _answer(post(port, "getModel", rq.build_request_get_model(fl_name, iteration, "1")),
                   parse_response_get_model)


def get_result(port: int, fl_name: str, iteration: int) -> Any:
    return _answer(post(port, "getResult", rq.build_request_get_result(fl_name, iteration, "1")),
                   parse_response_get_result)


def until_ok(call: Callable[[], Any], timeout_s: float = 30.0, wait_texts: tuple[str, ...] = (SAFEMODE,)) -> Any:
    """Repeats a round while it answers one of `wait_texts` (safemode) or SucNotReady, as MindSpore's clients do;
    fails on anything else, or when time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = call()
        waiting = answer in wait_texts if isinstance(answer, str) else answer.retcode == SUC_NOT_READY
        if not waiting:
            assert not isinstance(answer, str), answer
            assert answer.retcode == SUCCEED, (answer.retcode, answer.reason)
            return answer
        assert time.monotonic() < deadline, f"still waiting after {timeout_s} s: {answer}"
        time.sleep(0.2)


def features(answer: Any) -> dict[str, np.ndarray]:
    """name -> flat float32 array of a startFLJob or getModel answer."""
    return {t.name: np.asarray(t.data, np.float32) for t in answer.feature_map}


def assert_features(expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], np.asarray(value, np.float32).reshape(-1), atol=1e-4, err_msg=name)


def aggregated(updates: list[tuple[Mapping[str, np.ndarray], int]]) -> dict[str, np.ndarray]:
    """MindSpore's expected aggregate: Σ upload / Σ data_size (devices upload weights already times data size),
    over the aggregated weights only."""
    total = sum(n for _, n in updates)
    return {name: np.sum([u[name] for u, _ in updates], axis=0) / total
            for name in updates[0][0] if name != NOT_AGGREGATED}


def read_metrics(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "metrics.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.1)


# --- the operator side (the scheduler's REST routes) ----------------------------------------------------------------

def manage(port: int, route: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/{route}", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # an error answer ("Cannot find cluster info") still has a JSON body
        answer = json.loads(exc.read())
    return answer
