"""A HYBRID_TRAINING cluster of real processes (spec §11.1, §1.3): two servers, the scheduler, devices over HTTP and a
`mindfed worker` process doing real torch training on the offline digits. The worker completes each iteration; a
worker killed with SIGKILL mid-iteration drops out of /state and a restarted one completes that iteration; when the
server the worker uses is killed it fails over to the other."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from tests.e2e.cluster_procs import Devices, Scheduler, job_yaml, scheduler, stop_processes, wait_for

from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.model.lenet import lenet5_shapes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]
DEVICES, HEARTBEAT_TTL_S = 2, 2
SHAPES = lenet5_shapes(10, 1)


def lenet_update(fl_id: str, iteration: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(hash((fl_id, iteration)) % 2**32)
    return {n: (0.05 * rng.standard_normal(s)).astype(np.float32) for n, s in SHAPES.items()}


class Procs:
    """Servers and workers of the test, each logging to its own file; stopped by PID."""

    def __init__(self, tmp: Path, yaml: Path, redis: str) -> None:
        self.tmp, self.yaml, self.redis = tmp, yaml, redis
        self.model = tmp / "lenet.npz"
        np.savez(self.model, **{n: np.zeros(s, np.float32) for n, s in SHAPES.items()})  # type: ignore[arg-type]
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.workers: list[subprocess.Popen[bytes]] = []

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        with (self.tmp / log).open("ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp)

    def server(self, port: int) -> None:
        self.servers[port] = self._spawn(
            [sys.executable, "-m", "mindfed.cli.server_process", "--yaml_config", str(self.yaml),
             "--http_server_address", f"127.0.0.1:{port}", "--tcp_server_ip", "127.0.0.1", "--cache_address",
             self.redis, "--checkpoint_dir", "", "--model", str(self.model), "--heartbeat_ttl_s",
             str(HEARTBEAT_TTL_S), "--output_dir", str(self.tmp)], f"server_{port}.log")

    def worker(self) -> subprocess.Popen[bytes]:
        proc = self._spawn([sys.executable, "-m", "mindfed.cli.main", "worker", "--yaml_config", str(self.yaml),
                            "--cache_address", self.redis, "--sync_frequency", "3", "--client_batch_size", "32",
                            "--num_class", "10", "--heartbeat_ttl_s", str(HEARTBEAT_TTL_S)],
                           f"worker_{len(self.workers)}.log")
        self.workers.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}"
                         for p in sorted(self.tmp.glob("*.log")))

    def stop_all(self) -> None:
        stop_processes([*self.servers.values(), *self.workers])


async def workers_in_state(sched: Scheduler) -> list[str]:
    return [n["node_id"] for n in await sched.nodes() if n["role"] == "WORKER"]


async def run_devices(devices: Devices, ports: list[int], iteration: int) -> None:
    fl_ids = [f"dev{i:03d}" for i in range(DEVICES)]
    await asyncio.gather(*(devices.join(ports[i % len(ports)], f, iteration, 4) for i, f in enumerate(fl_ids)))
    for i, fl_id in enumerate(fl_ids):
        await devices.upload(ports[i % len(ports)], fl_id, iteration, lenet_update(fl_id, iteration), 4)


def worker_id_of(log: Path) -> str:
    found = re.findall(r"worker (worker_fl_\S+): ", log.read_text(errors="replace"))
    assert found, log.read_text(errors="replace")
    return found[0]


async def scenario(procs: Procs, ports: list[int], fl_name: str) -> dict[str, object]:
    seen: dict[str, object] = {}
    async with scheduler(procs.yaml, procs.redis) as sched, aiohttp.ClientSession() as session:
        devices = Devices(session, fl_name)
        await devices.wait_iteration(ports, 1, timeout_s=30)
        procs.worker()
        await wait_for(lambda: has_workers(sched, 1), 60, "the worker in /state")
        seen["first"] = await workers_in_state(sched)
        seen["roles"] = [n["role"] for n in await sched.nodes()]

        await run_devices(devices, ports, 1)  # the worker completes iteration 1
        await devices.wait_iteration(ports, 2, timeout_s=30)

        await run_devices(devices, ports, 2)  # ... and is killed in iteration 2
        procs.workers[0].send_signal(signal.SIGKILL)
        procs.workers[0].wait(timeout=10)
        await wait_for(lambda: has_workers(sched, 0), HEARTBEAT_TTL_S + 8, "the killed worker gone")
        seen["after_kill"] = await workers_in_state(sched)
        procs.worker()  # the restarted worker completes iteration 2
        await devices.wait_iteration(ports, 3, timeout_s=60)
        seen["second"] = await workers_in_state(sched)

        # the server the worker uses dies: iteration 3 on the other one, the worker fails over
        victim = ports[0]
        procs.servers[victim].send_signal(signal.SIGKILL)
        procs.servers[victim].wait(timeout=10)
        await run_devices(devices, ports[1:], 3)
        await devices.wait_iteration(ports[1:], 4, timeout_s=60)  # fl_iteration_num 3: finished
        await asyncio.to_thread(procs.workers[1].wait, 30)  # the worker ends with the job
    return seen


async def has_workers(sched: Scheduler, count: int) -> bool:
    return len(await workers_in_state(sched)) == count


def test_hybrid_cluster_survives_a_killed_worker_and_a_killed_server(tmp_path: Path) -> None:
    # Prepare
    fl_name = "hybrid-e2e"
    with EmbeddedRedis(data_dir=tmp_path / "redis") as redis:
        yaml = job_yaml(tmp_path, fl_name, server_mode="HYBRID_TRAINING", fl_iteration_num=3,
                        start_fl_job_threshold=DEVICES, global_iteration_time_window=60000)
        procs = Procs(tmp_path, yaml, redis.address)
        ports = [free_port(), free_port()]
        try:
            for port in ports:
                procs.server(port)
            # Execute
            seen = asyncio.run(scenario(procs, ports, fl_name))
        except BaseException:
            print(procs.logs())
            raise
        finally:
            procs.stop_all()

    # Assert
    first, second = worker_id_of(tmp_path / "worker_0.log"), worker_id_of(tmp_path / "worker_1.log")
    assert seen["roles"] == ["SERVER", "SERVER", "WORKER"]
    assert seen["first"] == [first]
    assert seen["after_kill"] == []
    assert seen["second"] == [second] != [first]
    lines = [json.loads(x) for x in (tmp_path / "metrics.json").read_text().splitlines()]
    assert [(x["currentIteration"], x["iterationResult"]) for x in lines] == [(1, "success"), (2, "success"),
                                                                              (3, "success")]
    assert {x["iterationReason"] for x in lines} == {
        "Push metrics finished! This iteration is valid. Proceed to next iteration."}
    log = (tmp_path / "worker_1.log").read_text()
    assert "worker done after 2 iterations (job finished)" in log  # iterations 2 and 3, then the job's end
    losses = [float(m) for m in re.findall(r"train loss ([0-9.]+)", log)]
    assert lines[-1]["metricsLoss"] == pytest.approx(losses[-1], abs=1e-4)  # the worker's pushed loss
