"""What every demo cluster does around its training: free addresses for its processes, waiting for the scheduler to
list them, printing where they are. Shared by the device and hybrid demo (cli/demo.py) and the cross-silo one
(cli/demo_cross_silo.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mindfed.address import Address
from mindfed.cli.demo_hybrid import WorkerLaunch
from mindfed.cli.launcher import SchedulerLaunch, ServerLaunch
from mindfed.errors import ConfigError
from mindfed.scheduler.operator_auth import operator_headers

TARGET_ACCURACY = 0.90  # the demo's final test accuracy it reports as reached or not
CLUSTER_WAIT_S = 60.0


def consecutive_address(address: str, count: int) -> str:
    """`address` itself, or with port 0 the host and a base port whose `count` consecutive ports are free."""
    first = Address.parse(address)
    if first.port:
        return address
    return str(first.with_port(free_base_port(first.host, count)))


def free_base_port(host: str, count: int, attempts: int = 50) -> int:
    """A port p such that p .. p+count-1 are free on `host` now (released again before returning)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(attempts):
        with contextlib.ExitStack() as held:
            first = held.enter_context(socket.socket(family, socket.SOCK_STREAM))
            first.bind((host, 0))
            base = int(first.getsockname()[1])
            try:
                for offset in range(1, count):
                    held.enter_context(socket.socket(family, socket.SOCK_STREAM)).bind((host, base + offset))
            except OSError:  # taken, or past 65535: try another base
                continue
            return base
    raise ConfigError(f"found no {count} consecutive free ports on {host} in {attempts} attempts")


def get_state(url: str, ssl_context: ssl.SSLContext | None = None) -> dict[str, Any] | None:
    """The scheduler's /state body, or None while it does not answer (not listening yet)."""
    try:
        request = urllib.request.Request(f"{url}/state", headers=operator_headers(os.environ))  # noqa: S310
        with urllib.request.urlopen(request, timeout=2, context=ssl_context) as answer:  # noqa: S310 - loopback
            body = answer.read()
    except urllib.error.HTTPError as refusal:  # 400 "Cannot find cluster info" until a server registers
        body = refusal.read()
    except (urllib.error.URLError, OSError):
        return None
    parsed = json.loads(body)
    return parsed if isinstance(parsed, dict) else None


def wait_for_cluster(scheduler: SchedulerLaunch, launch: ServerLaunch, servers: int,
                     timeout_s: float = CLUSTER_WAIT_S, ssl_context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """The scheduler's /state once it lists `servers` SERVER nodes (a server registers once it serves HTTP)."""
    deadline = time.monotonic() + timeout_s
    state: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        code = scheduler.exit_code()
        if code is not None:
            raise ConfigError(f"the scheduler exited with code {code}; see {scheduler.log_path}")
        for pid, code in launch.poll_failed():
            raise ConfigError(f"server pid {pid} exited with code {code}; see {launch.log_dir}/server_*/server.log")
        state = get_state(scheduler.url, ssl_context)
        if state is not None and sum(n.get("role") == "SERVER" for n in state.get("nodes", [])) >= servers:
            return state
        time.sleep(0.2)
    raise ConfigError(f"the scheduler did not list {servers} servers within {timeout_s:.0f} s (last /state: {state}); "
                      f"see {launch.log_dir}")


def wait_for_worker(scheduler: SchedulerLaunch, worker: WorkerLaunch, ssl_context: ssl.SSLContext | None = None,
                    timeout_s: float = CLUSTER_WAIT_S) -> dict[str, Any]:
    """The scheduler's /state once it lists the hybrid worker (it registers once it has joined the instance)."""
    deadline = time.monotonic() + timeout_s
    state: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        worker.check()
        state = get_state(scheduler.url, ssl_context)
        if state is not None and any(n.get("role") == "WORKER" for n in state.get("nodes", [])):
            return state
        time.sleep(0.2)
    raise ConfigError(f"the scheduler did not list the worker within {timeout_s:.0f} s; see {worker.log_path}")


def print_cluster(scheduler: SchedulerLaunch, launch: ServerLaunch, urls: list[str], state: dict[str, Any],
                  log_dir: Path) -> None:
    assert scheduler.process is not None
    pids = ", ".join(str(p.pid) for p in launch.processes)
    print(f"  scheduler: {scheduler.url} (pid {scheduler.process.pid}); servers: {' '.join(urls)} (pids {pids}); "
          f"logs in {log_dir}")
    print(f"  GET {scheduler.url}/state: {state.get('cluster_state', '?')}, {len(state['nodes'])} nodes")
    for node in state["nodes"]:
        print(f"    role {node['role']:<7} node_id {node['node_id']}  tcp_address {node['tcp_address']}")
