"""`mindfed finish` / finish_cloud.py: stop the whole cluster of one Redis port, and nothing else (spec §1.4)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mindfed.cache.embedded import find_redis_server, free_port, wait_for_port
from mindfed.cli.demo_cluster import free_base_port
from mindfed.cli.finish import is_redis_server, list_processes, read_process, redis_port_of

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
MINDFED = [sys.executable, "-m", "mindfed.cli.main"]


class Processes:
    """Processes started by a test; whatever is still running at the end is stopped, by its own PID."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], name: str) -> subprocess.Popen[bytes]:
        with (self.cwd / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(cmd, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        self.started.append(proc)
        return proc

    def redis(self, port: int) -> subprocess.Popen[bytes]:
        proc = self.start([find_redis_server(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                           "--appendonly", "no", "--dir", str(self.cwd)], f"redis-{port}")
        wait_for_port("127.0.0.1", port, timeout_s=10)
        return proc

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.cleanup()


def write_yaml(tmp_path: Path, name: str, cache_address: str, fl_name: str) -> Path:
    text = (REPO / "yamls" / "lenet.yaml").read_text()
    text = text.replace("address: 127.0.0.1:23456", f'address: "{cache_address}"').replace(
        "fl_name: Lenet", f"fl_name: {fl_name}")
    path = tmp_path / name
    path.write_text(text)
    return path


def get_json(url: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))


def wait_nodes(url: str, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if len(get_json(url + "/state").get("nodes", [])) == count:  # type: ignore[arg-type]
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url}/state never showed {count} nodes"
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    return sorted(p for p, info in list_processes().items() if info.ppid == pid)


def gone(pid: int) -> bool:
    info = read_process(pid)
    return info is None or info.state == "Z"


def wait_gone(pids: set[int], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(gone(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if not gone(p)]}"
        time.sleep(0.05)


def killed(stdout: str) -> set[int]:
    lines = stdout.split()
    assert lines[::2] == ["killed"] * (len(lines) // 2), stdout
    return {int(pid) for pid in lines[1::2]}


def test_finish_stops_scheduler_servers_launcher_and_redis_of_one_port(processes: Processes,
                                                                         tmp_path: Path) -> None:
    # Prepare: the cluster on redis port P, and unrelated processes that must survive
    port, other_port = free_port(), free_port()
    redis = processes.redis(port)
    other_redis = processes.redis(other_port)
    yaml_path = write_yaml(tmp_path, "job.yaml", f"127.0.0.1:{port}", "finishjob")
    other_yaml = write_yaml(tmp_path, "other.yaml", f"127.0.0.1:{other_port}", "otherjob")
    http = free_base_port("127.0.0.1", 2)  # --local_server_num 2 takes http and http + 1
    manage, other_manage = free_port(), free_port()
    launcher = processes.start([*MINDFED, "server", "--yaml_config", "job.yaml", "--http_server_address",
                                f"127.0.0.1:{http}", "--tcp_server_ip", "127.0.0.1", "--local_server_num", "2",
                                "--checkpoint_dir", ""], "launcher")
    scheduler = processes.start([*MINDFED, "scheduler", "--yaml_config", str(yaml_path),
                                 "--scheduler_manage_address", f"127.0.0.1:{manage}"], "scheduler")
    other_scheduler = processes.start([*MINDFED, "scheduler", "--yaml_config", str(other_yaml),
                                       "--scheduler_manage_address", f"127.0.0.1:{other_manage}"], "other")
    sleeper = processes.start(["sleep", "300"], "sleep")
    wait_nodes(f"http://127.0.0.1:{manage}", 2)
    servers = set(children(launcher.pid))
    assert len(servers) == 2

    # Execute
    done = subprocess.run([*MINDFED, "finish", "--redis_port", str(port)], capture_output=True, text=True,
                          timeout=60, check=False)

    # Assert
    assert done.returncode == 0, done.stderr
    assert killed(done.stdout) == {launcher.pid, scheduler.pid, redis.pid, *servers}
    assert launcher.wait(timeout=10) == 0  # SIGTERM: the launcher stopped its servers cleanly
    assert scheduler.wait(timeout=10) == 0
    redis.wait(timeout=10)
    wait_gone(servers)
    for survivor in (other_redis, other_scheduler, sleeper):
        assert survivor.poll() is None
    assert get_json(f"http://127.0.0.1:{other_manage}/state")["error_message"] == \
        "Cannot find cluster info for otherjob"


def test_finish_cloud_stops_an_embedded_redis_cluster_and_run_sched_scheduler(processes: Processes,
                                                                                tmp_path: Path) -> None:
    # Prepare: `mindfed server` with an embedded Redis, and a scheduler started in the background by run_sched.py
    write_yaml(tmp_path, "job.yaml", "", "embeddedjob")
    http, manage = free_port(), free_port()
    launcher = processes.start([*MINDFED, "server", "--yaml_config", "job.yaml", "--http_server_address",
                                f"127.0.0.1:{http}", "--tcp_server_ip", "127.0.0.1", "--checkpoint_dir", ""],
                               "launcher")
    deadline = time.monotonic() + 30
    while len(children(launcher.pid)) < 2:  # the redis-server, then the server
        assert time.monotonic() < deadline
        assert launcher.poll() is None
        time.sleep(0.05)
    kids = [info for p in children(launcher.pid) if (info := read_process(p)) is not None]
    redis_info = next(info for info in kids if is_redis_server(info))
    redis_pid, port = redis_info.pid, redis_port_of(redis_info)
    assert port is not None
    example = REPO / "example" / "cross_device_lenet_femnist"
    subprocess.run([sys.executable, str(example / "run_sched.py"), "--yaml_config", "job.yaml",
                    "--scheduler_manage_address", f"127.0.0.1:{manage}", "--cache_address", f"127.0.0.1:{port}"],
                   cwd=tmp_path, check=True, timeout=30, capture_output=True)
    wait_nodes(f"http://127.0.0.1:{manage}", 1)
    assert (tmp_path / "logs" / "scheduler" / "scheduler.log").exists()
    scheduler_pid = next(p for p, info in list_processes().items()
                         if "scheduler" in info.argv and f"127.0.0.1:{manage}" in info.argv)
    server_pids = set(children(launcher.pid)) - {redis_pid}
    sleeper = processes.start(["sleep", "300"], "sleep")

    # Execute
    try:
        done = subprocess.run([sys.executable, str(example / "finish_cloud.py"), f"--redis_port={port}"],
                              capture_output=True, text=True, timeout=60, check=False)
    finally:
        if not gone(scheduler_pid):  # run_sched.py detached it: not one of ours to reap
            os.kill(scheduler_pid, signal.SIGKILL)

    # Assert
    assert done.returncode == 0, done.stderr
    assert killed(done.stdout) == {launcher.pid, scheduler_pid, redis_pid, *server_pids}
    launcher.wait(timeout=10)
    wait_gone({scheduler_pid, redis_pid, *server_pids})
    assert sleeper.poll() is None
    sleeper.send_signal(signal.SIGTERM)


@pytest.mark.parametrize("bind", ["::1", "-::1 127.0.0.1"])
def test_finish_reads_the_port_of_a_redis_server_bound_to_ipv6_first(processes: Processes, bind: str) -> None:
    # redis-server titles itself with its first bind address as given: a bare IPv6, maybe with redis' `-` (optional)
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    port = free_port()
    proc = processes.start([find_redis_server(), "--bind", *bind.split(), "--port", str(port), "--save", "",
                            "--appendonly", "no", "--dir", str(processes.cwd)], f"redis-{port}")
    deadline = time.monotonic() + 10
    while (info := read_process(proc.pid)) is not None and f":{port}" not in " ".join(info.argv):
        assert time.monotonic() < deadline, "redis-server did not set its title"
        time.sleep(0.05)

    assert info is not None
    assert redis_port_of(info) == port
