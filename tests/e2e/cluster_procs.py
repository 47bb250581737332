"""Shared by the cluster e2e tests: real server processes (`python -m mindfed.cli.server_process`) over one Redis, an
in-process scheduler, and devices driven from the test over HTTP with our FlatBuffers builders.

Every process is started here and stopped by its own PID; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from tests.integration.cluster import Scheduler, running_scheduler

from mindfed.config import load
from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs
from mindfed.protocol.views import ResponseFLJobView, ResponseUpdateModelView

REPO = Path(__file__).resolve().parents[2]
SAFEMODE = b"The cluster is in safemode."
FINISHED = b"The server's training job is disabled or finished."  # also the text of a disabled instance
SHAPES = {"w": (16,), "b": (4,)}
TIMESTAMP = "1"


def job_yaml(tmp: Path, fl_name: str, **values: object) -> Path:
    """yamls/lenet.yaml with `key: value` lines replaced (keys are unique in that file)."""
    text = (REPO / "yamls" / "lenet.yaml").read_text()
    for key, value in {"fl_name": fl_name, "eval_type": "NOT_EVAL", "data_rate_dir": '""', **values}.items():
        text, n = re.subn(rf"^(\s*{key}:)[^\n]*$", rf"\g<1> {value}", text, count=1, flags=re.M)
        assert n == 1, key
    path = tmp / f"{fl_name}.yaml"
    path.write_text(text)
    return path


def zero_model(tmp: Path) -> Path:
    path = tmp / "model.npz"
    np.savez(path, **{k: np.zeros(s, np.float32) for k, s in SHAPES.items()})  # type: ignore[arg-type]
    return path


@dataclass
class ServerProcs:
    """Server processes of one job, keyed by HTTP port; logs in `tmp/server_{port}.log`."""

    yaml: Path
    redis: str
    tmp: Path
    heartbeat_ttl_s: int = 2
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, port: int) -> None:
        with (self.tmp / f"server_{port}.log").open("ab") as log:
            self.procs[port] = subprocess.Popen(
                [sys.executable, "-m", "mindfed.cli.server_process", "--yaml_config", str(self.yaml),
                 "--http_server_address", f"127.0.0.1:{port}", "--tcp_server_ip", "127.0.0.1",
                 "--cache_address", self.redis,
                 "--checkpoint_dir", "", "--model", str(zero_model(self.tmp)),
                 "--heartbeat_ttl_s", str(self.heartbeat_ttl_s), "--output_dir", str(self.tmp)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp)

    @property
    def ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def kill(self, port: int) -> None:
        self.procs[port].send_signal(signal.SIGKILL)
        self.procs[port].wait(timeout=10)

    def stop_all(self) -> None:
        stop_processes(self.procs.values())

    def node_ids(self, port: int) -> list[str]:
        """The node ids the server on `port` has run as (one per start), from its log."""
        text = (self.tmp / f"server_{port}.log").read_text(errors="replace")
        return re.findall(rf"server (\S+) serving http://127\.0\.0\.1:{port}/", text)

    def logs(self) -> str:
        return "\n".join(f"--- {p}\n" + (self.tmp / f"server_{p}.log").read_text(errors="replace")[-3000:]
                         for p in self.procs)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout_s: float, what: str,
                   period_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(period_s)


def scheduler(yaml: Path, redis: str) -> AbstractAsyncContextManager[Scheduler]:
    """The scheduler's management app in this process, over the job's Redis, and a client for it."""
    return running_scheduler(load(yaml, {"distributed_cache.address": redis}))


@dataclass
class Devices:
    """Devices of one job, talking to chosen servers. `models[i]` is the model each server served at iteration i."""

    session: aiohttp.ClientSession
    fl_name: str

    async def post(self, port: int, round_name: str, body: bytes) -> bytes:
        async with self.session.post(f"http://127.0.0.1:{port}/{round_name}", data=body,
                                     timeout=aiohttp.ClientTimeout(total=30)) as resp:
            assert resp.status == 200, (port, round_name, resp.status)
            return await resp.read()

    async def start_fl_job(self, port: int, fl_id: str, iteration: int, data_size: int) -> bytes:
        return await self.post(port, "startFLJob",
                               rq.build_request_fl_job(self.fl_name, fl_id, iteration, data_size, TIMESTAMP))

    async def update_model(self, port: int, fl_id: str, iteration: int, weights: dict[str, np.ndarray],
                           data_size: int) -> bytes:
        feature_map = [(k, (v * data_size).astype(np.float32)) for k, v in weights.items()]
        return await self.post(port, "updateModel",
                               rq.build_request_update_model(self.fl_name, fl_id, iteration, feature_map, TIMESTAMP))

    async def get_result(self, port: int, iteration: int) -> bytes:
        return await self.post(port, "getResult", rq.build_request_get_result(self.fl_name, iteration, TIMESTAMP))

    async def get_model(self, port: int, iteration: int) -> bytes:
        return await self.post(port, "getModel", rq.build_request_get_model(self.fl_name, iteration, TIMESTAMP))

    async def iteration_of(self, port: int) -> int | None:
        """The server's current iteration (from getResult), None while it is unreachable or refusing."""
        try:
            raw = await self.get_result(port, 0)
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None
        return None if raw.startswith(b"The ") else rs.parse_response_get_result(raw).iteration

    async def wait_iteration(self, ports: list[int], iteration: int, timeout_s: float) -> None:
        """Until every one of `ports` is at `iteration` or later."""

        async def reached() -> bool:
            seen = await asyncio.gather(*(self.iteration_of(p) for p in ports))
            return all(s is not None and s >= iteration for s in seen)

        await wait_for(reached, timeout_s, f"servers {ports} at iteration {iteration}")

    async def join(self, port: int, fl_id: str, iteration: int, data_size: int, timeout_s: float = 20) -> \
            ResponseFLJobView:
        """startFLJob at `port` until admitted to `iteration` (a server one tick behind answers safemode)."""
        deadline = time.monotonic() + timeout_s
        while True:
            raw = await self.start_fl_job(port, fl_id, iteration - 1, data_size)
            if raw != SAFEMODE:
                job = rs.parse_response_fl_job(raw)
                if job.retcode == 200 and job.iteration == iteration:
                    return job
            assert time.monotonic() < deadline, (port, fl_id, iteration, raw[:200])
            await asyncio.sleep(0.05)

    async def upload(self, port: int, fl_id: str, iteration: int, weights: dict[str, np.ndarray],
                     data_size: int) -> ResponseUpdateModelView:
        raw = await self.update_model(port, fl_id, iteration, weights, data_size)
        assert not raw.startswith(b"The "), (port, fl_id, iteration, raw)
        return rs.parse_response_update_model(raw)

    async def run_iteration(self, ports: list[int], count: int, iteration: int) -> dict[str, tuple[
            dict[str, np.ndarray], int]]:
        """`count` devices join and upload, spread over `ports`; waits for the iteration to end on all of them.
        Returns the acknowledged updates (fl_id → weights, data size)."""
        fl_ids = [f"dev{i:03d}" for i in range(count)]
        at = {f: ports[i % len(ports)] for i, f in enumerate(fl_ids)}
        sizes = {f: 1 + (i * 5 + iteration) % 7 for i, f in enumerate(fl_ids)}
        await asyncio.gather(*(self.join(at[f], f, iteration, sizes[f]) for f in fl_ids))
        replies = await asyncio.gather(*(self.upload(at[f], f, iteration, weights_of(f, iteration), sizes[f])
                                         for f in fl_ids))
        assert [r.retcode for r in replies] == [200] * count, [r.reason for r in replies]
        await self.wait_iteration(ports, iteration + 1, timeout_s=30)
        return {f: (weights_of(f, iteration), sizes[f]) for f in fl_ids}

    async def served_model(self, port: int, iteration: int) -> dict[str, np.ndarray]:
        view = rs.parse_response_get_model(await self.get_model(port, iteration))
        assert view.retcode == 200, (port, iteration, view.retcode, view.reason)
        return {t.name: np.array(t.data, copy=True) for t in view.feature_map}


def weights_of(fl_id: str, iteration: int) -> dict[str, np.ndarray]:
    seed = int(fl_id.removeprefix("dev")) * 1000 + iteration
    return {k: np.random.default_rng(seed).standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}


def weighted_mean(updates: dict[str, tuple[dict[str, np.ndarray], int]]) -> dict[str, np.ndarray]:
    total = sum(n for _, n in updates.values())
    return {k: np.sum([w[k].astype(np.float64) * n for w, n in updates.values()], axis=0) / total for k in SHAPES}


def metrics(tmp: Path) -> list[dict[str, Any]]:
    path = tmp / "metrics.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


def stop_processes(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running (a clean leave), then SIGKILL what has not exited after 15 s."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
