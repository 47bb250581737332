"""Chaos: 4 server processes, 40 devices, one server SIGKILLed inside the updateModel window of every iteration
(and restarted). Training reaches the final iteration and every aggregate contains every update that was answered
SUCCEED, weighted exactly; the only other updates it may contain are the ones in flight at the kill (their server may
have made them durable just before dying, without answering)."""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from tests.e2e.cluster_procs import stop_processes

from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
DEVICES, SERVERS, ITERATIONS = 40, 4, 5
SHAPES = {"w": (64,), "b": (4,)}
SAFE_TEXTS = (b"The cluster is in safemode.",)
FINISHED = b"The server's training job is disabled or finished."


@dataclass
class Cluster:
    yaml: Path
    redis: str
    ports: list[int]
    tmp: Path
    update_log: str = "on"
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, port: int) -> None:
        with (self.tmp / f"server_{port}.log").open("ab") as log:
            self.procs[port] = subprocess.Popen(
                [sys.executable, "-m", "mindfed.cli.server_process", "--yaml_config", str(self.yaml),
                 "--http_server_address", f"127.0.0.1:{port}", "--tcp_server_ip", "127.0.0.1",
                 "--cache_address", self.redis, "--checkpoint_dir", "",
                 "--model", str(self.tmp / "model.npz"), "--heartbeat_ttl_s", "2", "--output_dir", str(self.tmp),
                 "--update_log", self.update_log],
                stdout=log, stderr=subprocess.STDOUT)

    def kill(self, port: int) -> None:
        self.procs[port].send_signal(signal.SIGKILL)
        self.procs[port].wait()

    def stop_all(self) -> None:
        stop_processes(self.procs.values())


@dataclass
class Ledger:
    models: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    acked: dict[int, dict[str, tuple[dict[str, np.ndarray], int]]] = field(default_factory=dict)
    in_flight_at_kill: dict[int, dict[str, tuple[dict[str, np.ndarray], int]]] = field(default_factory=dict)
    in_flight: dict[str, tuple[int, dict[str, np.ndarray], int]] = field(default_factory=dict)


async def post(session: aiohttp.ClientSession, port: int, round_name: str, body: bytes) -> bytes:
    async with session.post(f"http://127.0.0.1:{port}/{round_name}", data=body,
                            timeout=aiohttp.ClientTimeout(total=30)) as resp:
        assert resp.status == 200
        return await resp.read()


async def any_server(session: aiohttp.ClientSession, cluster: Cluster, round_name: str, body: bytes,
                     rng: random.Random, deadline: float) -> bytes:
    """POST to random servers until one answers something other than safemode (killed servers refuse)."""
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        try:
            answer = await post(session, rng.choice(cluster.ports), round_name, body)
            if answer not in SAFE_TEXTS:
                return answer
        except (TimeoutError, aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"no server answered {round_name} in time")


async def device(index: int, session: aiohttp.ClientSession, cluster: Cluster, ledger: Ledger,
                 fl_name: str, deadline: float) -> None:
    rng = random.Random(index)
    fl_id = f"dev{index:03d}"
    for iteration in range(1, ITERATIONS + 1):
        n = rng.randint(1, 20)  # this iteration's data size
        while True:  # a server that has not noticed the new iteration yet (≤ one tick) turns the device away
            job = rs.parse_response_fl_job(await any_server(session, cluster, "startFLJob",
                                                            rq.build_request_fl_job(fl_name, fl_id, iteration - 1, n,
                                                                                    "1"), rng, deadline))
            if job.retcode == 200 or job.iteration >= iteration:
                break
            await asyncio.sleep(0.1)
        # A server killed after Redis admitted the device but before it answered: the retry on another server is
        # told this (a device joins once per iteration, spec §3.5), and the device is in: it may upload.
        rejoined = job.reason == f"Updating device metadata failed for fl id {fl_id}"
        assert job.retcode == 200 or rejoined, (job.retcode, job.reason, job.iteration)
        assert job.iteration == iteration, (job.retcode, job.reason, job.iteration)
        weights = {k: np.random.default_rng(index * 100 + iteration).standard_normal(s).astype(np.float32)
                   for k, s in SHAPES.items()}
        await asyncio.sleep(rng.uniform(0.0, 1.5))  # local training
        body = rq.build_request_update_model(fl_name, fl_id, iteration, [(k, v * n) for k, v in weights.items()],
                                             "1")
        ledger.in_flight[fl_id] = (iteration, weights, n)
        try:
            raw = await any_server(session, cluster, "updateModel", body, rng, deadline)
            if raw == FINISHED:  # the last iteration ended without this (surplus) update
                return
            answer = rs.parse_response_update_model(raw)
        finally:
            ledger.in_flight.pop(fl_id, None)
        if answer.retcode == 200:
            ledger.acked.setdefault(iteration, {})[fl_id] = (weights, n)
        while True:  # wait for the iteration to end (getResult on any live server)
            result = await any_server(session, cluster, "getResult", rq.build_request_get_result(fl_name, iteration,
                                                                                                  "1"), rng, deadline)
            if not result.startswith(b"The ") and rs.parse_response_get_result(result).retcode == 200:
                break
            await asyncio.sleep(0.1)
        while index == 0:  # fetch the model now: a server restarted later keeps only the models from its start on
            view = rs.parse_response_get_model(await any_server(
                session, cluster, "getModel", rq.build_request_get_model(fl_name, iteration, "1"), rng, deadline))
            if view.retcode == 200 and view.iteration > iteration:
                ledger.models[iteration] = {t.name: np.asarray(t.data) for t in view.feature_map}
                break
            await asyncio.sleep(0.05)  # that server has not switched yet


async def chaos(cluster: Cluster, ledger: Ledger, rng: random.Random) -> None:
    """In every iteration, once some updates are acknowledged, SIGKILL a server and start it again."""
    for iteration in range(1, ITERATIONS + 1):
        while len(ledger.acked.get(iteration, {})) < 8:
            await asyncio.sleep(0.02)
        victim = rng.choice(cluster.ports)
        cluster.kill(victim)
        ledger.in_flight_at_kill[iteration] = {f: (w, n) for f, (it, w, n) in ledger.in_flight.items()
                                               if it == iteration}
        await asyncio.sleep(0.3)
        cluster.start(victim)


def weighted_mean(updates: dict[str, tuple[dict[str, np.ndarray], int]]) -> dict[str, np.ndarray]:
    total = sum(n for _, n in updates.values())
    return {k: sum(w[k].astype(np.float64) * n for w, n in updates.values()) / total for k in SHAPES}


def matches(model: dict[str, np.ndarray], acked: dict, maybe: dict) -> bool:
    """The model is the weighted mean of all acked updates plus some subset of the in-flight ones."""
    for size in range(len(maybe) + 1):
        for extra in itertools.combinations(sorted(maybe), size):
            expect = weighted_mean({**acked, **{f: maybe[f] for f in extra}})
            if all(np.allclose(model[k], expect[k].reshape(-1), rtol=1e-5, atol=1e-6) for k in SHAPES):
                return True
    return False


async def run_chaos(cluster: Cluster, ledger: Ledger, fl_name: str) -> dict[int, dict[str, np.ndarray]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 240
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        await any_server(session, cluster, "getResult", rq.build_request_get_result(fl_name, 0, "1"),
                         random.Random(0), deadline)
        killer = asyncio.create_task(chaos(cluster, ledger, random.Random(99)))
        await asyncio.gather(*(device(i, session, cluster, ledger, fl_name, deadline) for i in range(DEVICES)))
        await killer
    return ledger.models


@pytest.mark.parametrize("update_log", ["on", "replica"])
def test_kill_a_server_every_iteration_loses_no_acknowledged_update(tmp_path: Path, update_log: str) -> None:
    # "on": every body in the killed server's log in Redis; "replica": on the next server, a marker in Redis
    fl_name = "chaos"
    np.savez(tmp_path / "model.npz", **{k: np.zeros(s, np.float32) for k, s in SHAPES.items()})
    with EmbeddedRedis() as redis:
        text = (REPO / "yamls" / "lenet.yaml").read_text()
        for old, new in (("fl_name: Lenet", f"fl_name: {fl_name}"), ("fl_iteration_num: 25", "fl_iteration_num: 5"),
                         ("start_fl_job_threshold: 2", f"start_fl_job_threshold: {DEVICES}"),
                         ("update_model_ratio: 1.0", "update_model_ratio: 0.8"),
                         ("eval_type: SILHOUETTE_SCORE", "eval_type: NOT_EVAL")):
            assert old in text
            text = text.replace(old, new)
        (tmp_path / "chaos.yaml").write_text(text)
        cluster = Cluster(tmp_path / "chaos.yaml", redis.address, [free_port() for _ in range(SERVERS)], tmp_path,
                          update_log)
        ledger = Ledger()
        try:
            for port in cluster.ports:
                cluster.start(port)
            models = asyncio.run(run_chaos(cluster, ledger, fl_name))
            deadline = time.monotonic() + 15  # the last summary is written while the devices already leave
            while time.monotonic() < deadline and (tmp_path / "metrics.json").read_text().count("\n") < ITERATIONS:
                time.sleep(0.1)
        finally:
            cluster.stop_all()
    assert sorted(ledger.in_flight_at_kill) == list(range(1, ITERATIONS + 1))  # a kill in every iteration
    lines = [line for line in (tmp_path / "metrics.json").read_text().splitlines() if line]
    assert len(lines) >= ITERATIONS
    assert all('"iterationResult":"success"' in line for line in lines[:ITERATIONS])
    for iteration, model in models.items():
        assert matches(model, ledger.acked[iteration], ledger.in_flight_at_kill[iteration]), (
            iteration, len(ledger.acked[iteration]), sorted(ledger.in_flight_at_kill[iteration]))
