"""Idle memory of the cluster's processes: what a server and a scheduler hold at rest, against the interpreter floor.

Run: `python -m benchmarks.idle_rss [--json PATH] [--repeats N] [--settle_s S]`.

Starts a private redis-server, then `mindfed server` (a launcher and one server process, LeNet-5 loaded) and
`mindfed scheduler`, waits until the server serves, lets them settle and reads VmRSS of each process from /proc.
The peer in the same run is the floor every mindfed role stands on: a fresh interpreter that has imported numpy,
aiohttp, redis and PyYAML and nothing else. A figure near the floor means the role holds little of its own; torch
alone would add about 300 MB. Best (lowest) of N runs, since the page cache and neighbours move RSS a little.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.probe import add_common_args, print_table, write_json
from mindfed.cache.embedded import EmbeddedRedis, free_port

FLOOR = "import numpy, aiohttp, redis.asyncio, yaml, time; print('ready', flush=True); time.sleep(60)"
YAML = Path(__file__).resolve().parents[1] / "yamls" / "lenet.yaml"
START_TIMEOUT_S = 60.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def wait_http(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()  # noqa: S310 - our own loopback URL
            return
        except urllib.error.HTTPError:  # answering, even with an error code: it serves
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S} s")


def measure_once(settle_s: float) -> dict[str, float]:
    env = {**os.environ, "MINDFED_LOG_LEVEL": "WARNING"}
    with EmbeddedRedis() as redis, tempfile.TemporaryDirectory() as scratch:
        http_port, manage_port = free_port(), free_port()
        yaml_path = Path(scratch, "job.yaml")  # the seed's YAML on this Redis (flags differ between versions)
        yaml_path.write_text(YAML.read_text().replace("127.0.0.1:23456", redis.address))
        launcher = subprocess.Popen(
            [sys.executable, "-m", "mindfed.cli.main", "server", "--yaml_config", str(yaml_path),
             "--http_server_address", f"127.0.0.1:{http_port}", "--checkpoint_dir", "",
             "--log_dir", str(Path(scratch, "logs"))], cwd=scratch, env=env, stdin=subprocess.DEVNULL)
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "mindfed.cli.main", "scheduler", "--yaml_config", str(yaml_path),
             "--scheduler_manage_address", f"127.0.0.1:{manage_port}"], cwd=scratch, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        floor = subprocess.Popen([sys.executable, "-c", FLOOR], stdout=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            wait_http(f"http://127.0.0.1:{http_port}/", deadline)
            wait_http(f"http://127.0.0.1:{manage_port}/state", deadline)
            assert floor.stdout is not None
            assert floor.stdout.readline().strip() == "ready"
            time.sleep(settle_s)
            servers = children(launcher.pid)
            return {"server_process_mib": sum(rss_mib(p) for p in servers) / max(1, len(servers)),
                    "launcher_mib": rss_mib(launcher.pid), "scheduler_mib": rss_mib(scheduler.pid),
                    "floor_mib": rss_mib(floor.pid)}
        finally:
            for proc in (floor, scheduler, launcher):
                proc.terminate()
            for proc in (floor, scheduler, launcher):
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle_rss", description=__doc__)
    add_common_args(parser, default_repeats=3)
    parser.add_argument("--settle_s", type=float, default=3.0, help="seconds at rest before reading RSS")
    args = parser.parse_args(argv)
    runs = []
    for i in range(max(1, args.repeats)):
        runs.append(measure_once(args.settle_s))
        print(f"run {i + 1}/{args.repeats}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[-1].items()), flush=True)
    best = {key: min(run[key] for run in runs) for key in runs[0]}
    floor = best["floor_mib"]
    rows = [(name, best[key], best[key] / floor) for name, key in (
        ("server process (LeNet-5 loaded)", "server_process_mib"), ("mindfed server launcher", "launcher_mib"),
        ("scheduler", "scheduler_mib"), ("floor: numpy+aiohttp+redis+yaml", "floor_mib"))]
    print_table(["process", "idle RSS MiB (best)", "x floor"], rows)
    tree = best["server_process_mib"] + best["launcher_mib"]
    print(f"`mindfed server` tree (launcher + 1 server): {tree:.1f} MiB")
    write_json(args.json, {**{k: round(v, 1) for k, v in best.items()}, "server_tree_mib": round(tree, 1),
                           "server_over_floor": round(best["server_process_mib"] / floor, 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
