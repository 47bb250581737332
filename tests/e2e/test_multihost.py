"""Several hosts, as Linux network namespaces on one bridge: Redis on 10.77.0.1, the scheduler on .2, two servers
on .3 and .4 (each advertising its own address and a fixed node port), devices on .5. Three iterations train with
exact weighted means; then the server on .4 is SIGKILLed right after its devices' updates were acknowledged, and the
server on .3 takes them over: the next model is still the exact weighted mean of every acknowledged update.

Needs root (`ip netns`); skipped with the reason otherwise. Every namespace, link and process made here is removed
by name or PID in `finally`, and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.e2e.cluster_procs import REPO, job_yaml, stop_processes, weighted_mean, weights_of, zero_model

import mindfed
from mindfed.cache.embedded import find_redis_server

TAG = f"mfh{os.getpid() % 100000}"  # names of this run's namespaces and links (at most 15 characters)
HOSTS = {"redis": "10.77.0.1", "sched": "10.77.0.2", "srva": "10.77.0.3", "srvb": "10.77.0.4", "dev": "10.77.0.5"}
REDIS_PORT, SCHED_PORT, NODE_PORT = 6379, 11202, 7000
PORT_A, PORT_B = 6666, 6667  # the HTTP ports name the servers for the devices (hosts differ anyway)
DEVICES = 6
# the children import this very mindfed (installed, editable or on PYTHONPATH) and, for the device script, the tests
_MINDFED = Path(mindfed.__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(_MINDFED), str(REPO), os.environ.get("PYTHONPATH"))
                                                   if p), "PYTHONUNBUFFERED": "1"}


def ns(role: str) -> str:
    return f"{TAG}{role}"


def sh(*cmd: str, timeout_s: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)


def must(*cmd: str) -> None:
    done = sh(*cmd)
    assert done.returncode == 0, (cmd, done.stderr)


def in_ns(role: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns(role), *cmd]


@pytest.fixture
def hosts() -> Iterator[None]:
    """The namespaces on one bridge; skips when this machine does not let us make them."""
    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (iproute2) on this machine")
    probe = sh("ip", "netns", "add", ns("probe"))
    if probe.returncode != 0:
        pytest.skip(f"`ip netns add` is not permitted here: {probe.stderr.strip()}")
    sh("ip", "netns", "delete", ns("probe"))
    bridge = f"{TAG}br"
    made: list[str] = []
    try:
        must("ip", "link", "add", bridge, "type", "bridge")
        must("ip", "link", "set", bridge, "up")
        for i, (role, ip) in enumerate(HOSTS.items()):
            must("ip", "netns", "add", ns(role))
            made.append(ns(role))
            host_end, ns_end = f"{TAG}h{i}", f"{TAG}n{i}"
            must("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            must("ip", "link", "set", ns_end, "netns", ns(role))
            must("ip", "link", "set", host_end, "master", bridge, "up")
            must(*in_ns(role, "ip", "addr", "add", f"{ip}/24", "dev", ns_end))
            must(*in_ns(role, "ip", "link", "set", ns_end, "up"))
            must(*in_ns(role, "ip", "link", "set", "lo", "up"))
        yield
    finally:
        for name in made:  # deleting a namespace removes its veth end, and with it the host end
            sh("ip", "netns", "delete", name)
        sh("ip", "link", "delete", bridge)


def start(role: str, cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # `ip netns exec` execs the command: the PID is the process's own
        return subprocess.Popen(in_ns(role, *cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=ENV, cwd=log.parent)


def server_cmd(yaml: Path, tmp: Path, role: str, http_port: int) -> list[str]:
    out = tmp / role
    out.mkdir(exist_ok=True)
    return [sys.executable, "-m", "mindfed.cli.server_process", "--yaml_config", str(yaml),
            "--http_server_address", f"{HOSTS[role]}:{http_port}", "--tcp_server_ip", HOSTS[role],
            "--tcp_server_port", str(NODE_PORT), "--cache_address", f"{HOSTS['redis']}:{REDIS_PORT}",
            "--checkpoint_dir", "", "--model", str(zero_model(tmp)), "--heartbeat_ttl_s", "2",
            "--output_dir", str(tmp)]


def devices(fl_name: str, servers: dict[int, str], iteration: int, scheduler: bool = False,
            **more: object) -> dict[str, Any]:
    """One round of devices from the devices' namespace (tests/e2e/multihost_device.py)."""
    spec = {"fl_name": fl_name, "servers": {str(p): h for p, h in servers.items()}, "iteration": iteration,
            "count": DEVICES, "scheduler": f"{HOSTS['sched']}:{SCHED_PORT}" if scheduler else "", **more}
    done = subprocess.run(in_ns("dev", sys.executable, str(REPO / "tests" / "e2e" / "multihost_device.py"),
                                json.dumps(spec)), capture_output=True, text=True, timeout=120, env=ENV, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def acked_updates(reply: dict[str, Any], iteration: int) -> dict[str, tuple[dict[str, np.ndarray], int]]:
    return {f: (weights_of(f, iteration), int(n)) for f, n in reply["acked"].items()}


def wait_for_nodes(fl_name: str, count: int, timeout_s: float = 60) -> None:
    """Until the scheduler (reached from the devices' host) lists `count` servers."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = subprocess.run(in_ns("dev", sys.executable, "-c", (
            "import json,sys,urllib.request as u;"
            f"r=u.urlopen(u.Request('http://{HOSTS['sched']}:{SCHED_PORT}/state',data=b'',method='POST'),timeout=5);"
            "print(len(json.loads(r.read()).get('nodes',[])))")), capture_output=True, text=True, timeout=30,
            env=ENV, check=False)
        if done.returncode == 0 and done.stdout.strip() == str(count):
            return
        assert time.monotonic() < deadline, f"{count} servers in /state: not within {timeout_s} s ({done.stderr})"
        time.sleep(0.5)


@pytest.mark.usefixtures("hosts")
def test_servers_on_separate_hosts_train_and_take_over_a_killed_one(tmp_path: Path) -> None:
    # Arrange
    fl_name = "multihost"
    yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=10, start_fl_job_threshold=DEVICES, update_model_ratio=1.0,
                    start_fl_job_time_window=30000, update_model_time_window=30000,
                    global_iteration_time_window=60000)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["redis"] = start("redis", [find_redis_server(), "--bind", HOSTS["redis"], "--port", str(REDIS_PORT),
                                         "--save", "", "--appendonly", "no", "--protected-mode", "no"],
                               tmp_path / "redis.log")
        procs["sched"] = start("sched", [sys.executable, "-m", "mindfed", "scheduler", "--yaml_config", str(yaml),
                                         "--scheduler_manage_address", f"{HOSTS['sched']}:{SCHED_PORT}",
                                         "--cache_address", f"{HOSTS['redis']}:{REDIS_PORT}"],
                               tmp_path / "sched.log")
        procs["srva"] = start("srva", server_cmd(yaml, tmp_path, "srva", PORT_A), tmp_path / "srva.log")
        time.sleep(0.5)
        procs["srvb"] = start("srvb", server_cmd(yaml, tmp_path, "srvb", PORT_B), tmp_path / "srvb.log")
        wait_for_nodes(fl_name, 2)
        both = {PORT_A: HOSTS["srva"], PORT_B: HOSTS["srvb"]}

        # Act
        replies = {1: devices(fl_name, both, 1, scheduler=True), 2: devices(fl_name, both, 2),
                   3: devices(fl_name, both, 3)}
        # iteration 4: all join, 5 of 6 upload (to both servers); the one on 10.77.0.4 dies holding acknowledged
        # updates of the running iteration; the last device uploads to 10.77.0.3, which completes it with them
        replies[4] = devices(fl_name, both, 4, upload=[f"dev{i:03d}" for i in (0, 1, 2, 3, 5)])
        procs["srvb"].send_signal(signal.SIGKILL)
        procs["srvb"].wait(timeout=10)
        late = devices(fl_name, both, 4, join=False, upload=["dev004"])  # dev004 joined at 10.77.0.3
        replies[4]["acked"].update(late["acked"])
        replies[5] = devices(fl_name, {PORT_A: HOSTS["srva"]}, 5)
        replies[6] = devices(fl_name, {PORT_A: HOSTS["srva"]}, 6)
    except BaseException:
        for role in ("redis", "sched", "srva", "srvb"):
            log = tmp_path / f"{role}.log"
            print(f"--- {role}\n" + (log.read_text(errors="replace")[-3000:] if log.exists() else ""))
        raise
    finally:
        stop_processes(procs.values())

    # Assert
    nodes = replies[1]["nodes"]
    assert sorted(n.get("tcpAddress", n.get("tcp_address", "")) for n in nodes) == [
        f"{HOSTS['srva']}:{NODE_PORT}", f"{HOSTS['srvb']}:{NODE_PORT}"], nodes
    logs = {role: (tmp_path / f"{role}.log").read_text(errors="replace") for role in ("srva", "srvb")}
    assert f"server {HOSTS['srva']}:{NODE_PORT}::" in logs["srva"]
    assert f"server {HOSTS['srvb']}:{NODE_PORT}::" in logs["srvb"]
    assert {replies[4]["served_by"][f] for f in ("dev001", "dev003", "dev005")} == {PORT_B}  # held by the killed one
    for iteration in range(1, 6):  # the model handed out next is this iteration's exact weighted mean
        reply = replies[iteration]
        assert len(reply["acked"]) == DEVICES, (iteration, reply["acked"])
        expect = weighted_mean(acked_updates(reply, iteration))
        handed = replies[iteration + 1]["handed"]
        for name, value in expect.items():
            assert np.allclose(np.array(handed[name], np.float32), value, rtol=1e-5, atol=1e-6), (iteration, name)
