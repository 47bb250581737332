"""The job API under MindSpore Federated's own test harness pattern (spec §14, `tests/ut/python/tests/common.py`):
jobs run in forked `multiprocessing.Process`es, `after_started` reports through a Pipe, start errors come back
pickled through the same Pipe, processes are stopped by SIGTERM, and the cluster is checked via the scheduler's
`/state`."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
import urllib.error
import urllib.request
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mindfed import Callback, FeatureMap, FlSchedulerJob, FLServerJob
from mindfed.cache.embedded import free_port
from mindfed.protocol import request_builders as rq
from mindfed.protocol.responses import parse_response_fl_job

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
FORK = multiprocessing.get_context("fork")  # what MindSpore's harness gets on Linux


def write_yaml(tmp: Path, fl_name: str, redis_address: str, threshold: int = 1) -> str:
    cfg = yaml.safe_load((REPO / "yamls" / "lenet.yaml").read_text())
    cfg.update(fl_name=fl_name, fl_iteration_num=5)
    cfg["distributed_cache"]["address"] = redis_address
    cfg["round"].update(start_fl_job_threshold=threshold, start_fl_job_time_window=10000,
                        update_model_time_window=10000, global_iteration_time_window=30000)
    cfg["unsupervised"]["eval_type"] = "NOT_EVAL"
    cfg["summary"].update(data_rate_dir="", metrics_file=str(tmp / "metrics.json"),
                          failure_event_file=str(tmp / "event.txt"))
    path = tmp / f"{fl_name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def feature_map(seed: int) -> FeatureMap:
    rng = np.random.default_rng(seed)
    fm = FeatureMap()
    fm.add_feature("feature_conv", rng.standard_normal((2, 3)).astype(np.float32), require_aggr=True)
    fm.add_feature("feature_bn", rng.standard_normal(1).astype(np.float32), require_aggr=True)
    fm.add_feature("feature_bn2", np.array(rng.standard_normal(), np.float32), require_aggr=True)
    fm.add_feature("feature_conv2", rng.standard_normal((2, 3)).astype(np.float32), require_aggr=False)
    return fm


def wait_message(proc: multiprocessing.process.BaseProcess, pipe: Connection, timeout_s: float = 15) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pipe.poll(0.1):
            return pipe.recv()
        assert proc.is_alive(), f"job process exited with {proc.exitcode}"
    raise AssertionError(f"no message from the job within {timeout_s} s")


class Jobs:
    """Job processes of one test; each is stopped by its own PID."""

    def __init__(self) -> None:
        self.procs: list[multiprocessing.process.BaseProcess] = []

    def server(self, yaml_config: str, address: str, ckpt: Path, fm: FeatureMap) -> multiprocessing.process.BaseProcess:
        send, recv = FORK.Pipe()

        class FlCallback(Callback):
            def after_started(self) -> None:
                send.send("Success")

        def run() -> None:
            try:
                FLServerJob(yaml_config, address, "127.0.0.1", str(ckpt)).run(fm, callback=FlCallback())
            except Exception as exc:  # noqa: BLE001 - sent to the test, as MindSpore's harness does
                send.send(exc)

        return self._start(run, recv)

    def scheduler(self, yaml_config: str, address: object) -> multiprocessing.process.BaseProcess:
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
                    state(port)
                    return proc
                except OSError:
                    pass
        message = wait_message(proc, recv, 5)
        if isinstance(message, Exception):
            raise message
        return proc

    def _start(self, run: Any, recv: Connection) -> multiprocessing.process.BaseProcess:
        proc = FORK.Process(target=run)
        proc.start()
        self.procs.append(proc)
        message = wait_message(proc, recv)
        if isinstance(message, Exception):
            raise message
        return proc

    @staticmethod
    def stop(proc: multiprocessing.process.BaseProcess) -> int | None:
        assert proc.pid is not None
        proc.terminate()  # SIGTERM
        proc.join(15)
        return proc.exitcode

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(10)


@pytest.fixture
def jobs() -> Any:
    started = Jobs()
    yield started
    started.stop_all()


def state(port: int) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/state", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # an error answer ("Cannot find cluster info") still has a JSON body
        answer = json.loads(exc.read())
    return answer


def start_fl_job(port: int, fl_name: str, fl_id: str) -> Any:
    body = rq.build_request_fl_job(fl_name, fl_id, 0, 32, "1")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/startFLJob", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        return parse_response_fl_job(resp.read())


def test_two_servers_and_a_scheduler_under_mindspore_harness(redis_address: str, fl_name: str, tmp_path: Path,
                                                              jobs: Jobs) -> None:
    # Prepare
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, threshold=2)
    manage_port, ports = free_port(), [free_port(), free_port()]
    jobs.scheduler(job_yaml, f"127.0.0.1:{manage_port}")
    before = state(manage_port)

    # Execute
    servers = [jobs.server(job_yaml, f"127.0.0.1:{p}", tmp_path / f"ckpt{i}", feature_map(0))
               for i, p in enumerate(ports)]
    with_two = state(manage_port)
    jobs_sent = [start_fl_job(p, fl_name, f"dev{i}") for i, p in enumerate(ports)]

    # Assert
    assert (before["code"], before["error_message"]) == ("1", f"Cannot find cluster info for {fl_name}")
    assert with_two["cluster_state"] == "CLUSTER_READY"
    assert len(with_two["nodes"]) == 2
    assert all(n["tcp_address"] in n["node_id"] and n["role"] == "SERVER" for n in with_two["nodes"])
    expected = {n: i.data.reshape(-1) for n, i in feature_map(0).feature_map().items()}
    for job in jobs_sent:
        assert job.retcode == 200
        got = {t.name: np.asarray(t.data) for t in job.feature_map}
        assert sorted(got) == sorted(expected)
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value)

    # Execute / Assert: SIGTERM leaves the cluster, one server at a time
    assert jobs.stop(servers[0]) == 0
    assert len(state(manage_port)["nodes"]) == 1
    assert jobs.stop(servers[1]) == 0
    after = state(manage_port)
    assert after["code"] == "0"
    assert "nodes" not in after


def test_second_server_adopts_the_first_servers_model(redis_address: str, fl_name: str, tmp_path: Path,
                                                      jobs: Jobs) -> None:
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, threshold=2)
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        jobs.server(job_yaml, f"127.0.0.1:{port}", tmp_path / f"ckpt{i}", feature_map(i))
    got = {t.name: np.asarray(t.data) for t in start_fl_job(ports[1], fl_name, "dev").feature_map}
    np.testing.assert_array_equal(got["feature_conv"], feature_map(0).feature_map()["feature_conv"].data.reshape(-1))


@pytest.mark.parametrize("address", ["127.0.0.1:4000x", "127.0.0.1:", "127.0.0.1", "256.0.0.1:5000", 5000])
def test_scheduler_start_errors_reach_the_harness(redis_address: str, fl_name: str, tmp_path: Path, jobs: Jobs,
                                                   address: object) -> None:
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    expected = ("Parameter 'manage_address' should be str" if isinstance(address, int)
                else "Failed to start scheduler http server, invalid server address:")
    with pytest.raises(RuntimeError, match=expected):
        jobs.scheduler(job_yaml, address)


def test_sigint_stops_a_server_cleanly_too(redis_address: str, fl_name: str, tmp_path: Path, jobs: Jobs) -> None:
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    server = jobs.server(job_yaml, f"127.0.0.1:{free_port()}", tmp_path / "ckpt", feature_map(0))
    assert server.pid is not None
    os.kill(server.pid, signal.SIGINT)
    server.join(15)
    assert server.exitcode == 0


def test_a_server_with_another_model_layout_is_refused(redis_address: str, fl_name: str, tmp_path: Path,
                                                        jobs: Jobs) -> None:
    # Prepare: the first server declares the job's model layout
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    jobs.server(job_yaml, f"127.0.0.1:{free_port()}", tmp_path / "ckpt0", feature_map(0))
    flipped = feature_map(0)
    flipped.feature_map()["feature_conv2"].require_aggr = True
    smaller = FeatureMap()
    smaller.add_feature("feature_conv", np.zeros((2, 3), np.float32))
    smaller.add_feature("feature_bn", np.zeros(1, np.float32))

    # Execute / Assert: MindSpore's messages (spec §13) reach the harness as RuntimeError
    with pytest.raises(RuntimeError, match="The feature require_aggr 1 of local != that 0"):
        jobs.server(job_yaml, f"127.0.0.1:{free_port()}", tmp_path / "ckpt1", flipped)
    with pytest.raises(RuntimeError, match="The number 2 of local features != the number 4 declared"):
        jobs.server(job_yaml, f"127.0.0.1:{free_port()}", tmp_path / "ckpt2", smaller)
