"""updateModel ingest: a running mindfed server vs a raw asyncio HTTP sink, same bodies, same client, one run.

Run: `python -m benchmarks.ingest [--json PATH] [--repeats N] [--clients C] [--only lenet|d10m]
     [--modes off,on,replica]`.

For a LeNet-5 (62 classes, 3 channels: 66,404 floats, ~266 kB bodies) and a one-tensor model of 10M floats (40 MB
bodies) it starts, each in its own process, a mindfed server (`mindfed.cli.server_process` over a private redis-server)
and `benchmarks.http_sink`. Every repeat is one server iteration: K fake devices call startFLJob (not timed), their
updateModel bodies are built for that iteration (not timed), then C concurrent clients POST them (timed) and every
reply must be SUCCEED, i.e. every timed request is a real fold into the accumulator. The same bodies then go, from
the same client code, to the sink (timed). Figures are best of N: requests/s and MB/s (10^6) of request bodies, and
server/sink. The sink's GB/s against performance-limits' 4.5 GB/s (raw BufferedProtocol, different cores) says
whether the client side, which shares the machine's cores with the receiver, is the limit.

Each case runs once per `--update_log` mode (`--modes`): off (label as is), on (`_logged`: every body into Redis with
its reservation) and replica (`_replica`: every body copied to a second server of the job, started beside the first
on the same Redis and the same two cores, and a marker into Redis; server/replicas.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from benchmarks.http_sink import content_length
from benchmarks.probe import add_common_args, print_table, terminate, write_json
from mindfed.cache.embedded import EmbeddedRedis, free_port, wait_for_port
from mindfed.model.lenet import init_lenet5
from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs

REPO = Path(__file__).resolve().parents[1]
LENET_YAML = REPO / "yamls" / "lenet.yaml"
TIMESTAMP = "1700000000000"
START_TIMEOUT_S = 60.0
ITERATION_TIMEOUT_S = 120.0  # bounds every wait for admission / the switch to the next iteration
POST_TIMEOUT_S = 120.0  # bounds every timed batch of POSTs


MODE_SUFFIX = {"off": "", "on": "_logged", "replica": "_replica"}  # case label per --update_log mode


@dataclass(frozen=True)
class Case:
    """One model size: `requests` updates per iteration (= the server's start_fl_job_threshold)."""

    label: str
    weights: dict[str, np.ndarray]
    requests: int

    @property
    def floats(self) -> int:
        return sum(w.size for w in self.weights.values())


def cases() -> list[Case]:
    lenet = init_lenet5(62, 3)
    rng = np.random.default_rng(0)
    return [
        Case("lenet", {n: lenet.flat(n).astype(np.float32) for n in lenet.names}, 256),
        Case("d10m", {"w": rng.standard_normal(10_000_000, dtype=np.float32)}, 16),
    ]


# ---------------------------------------------------------------------------------------------- processes


def write_yaml(path: Path, fl_name: str, redis_address: str, threshold: int) -> None:
    """lenet.yaml with every request of an iteration accepted and no timer firing during a run."""
    cfg = yaml.safe_load(LENET_YAML.read_text(encoding="utf-8"))
    cfg["fl_name"] = fl_name
    cfg["fl_iteration_num"] = 100_000
    cfg["distributed_cache"]["address"] = redis_address
    cfg["round"].update(start_fl_job_threshold=threshold, start_fl_job_time_window=600_000, update_model_ratio=1.0,
                        update_model_time_window=600_000, global_iteration_time_window=3_600_000)
    cfg["summary"]["data_rate_dir"] = ""
    cfg["unsupervised"]["eval_type"] = "NOT_EVAL"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")


@contextlib.contextmanager
def child(argv: Sequence[str], port: int, log: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a process that listens on `port`; SIGTERM it (by its own pid) on the way out."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[2]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                wait_for_port("127.0.0.1", port, 0.5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
        yield proc
    finally:
        terminate(proc, 20)


def server_argv(yaml_path: Path, model_path: Path, port: int, redis_address: str, out_dir: Path,
                update_log: bool | str) -> list[str]:
    mode = update_log if isinstance(update_log, str) else "on" if update_log else "off"
    return [sys.executable, "-m", "mindfed.cli.server_process", "--yaml_config", str(yaml_path),
            "--http_server_address", f"127.0.0.1:{port}", "--cache_address", redis_address, "--checkpoint_dir", "",
            "--model", str(model_path), "--output_dir", str(out_dir), "--update_log", mode]


def replica_holder(yaml_path: Path, model_path: Path, redis_address: str, work: Path,
                   log: Path) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """A second server of the job in replica mode, holding the copies of the measured one; no client talks to it."""
    port = free_port()
    return child(server_argv(yaml_path, model_path, port, redis_address, work, "replica"), port, log, work)


def sink_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "benchmarks.http_sink", "--port", str(port)]


# ---------------------------------------------------------------------------------------------- client


class Connection:
    """One keep-alive HTTP/1.1 connection over a non-blocking socket: `loop.sock_sendall` sends the body from the
    caller's bytes (no copy into a transport buffer, unlike aiohttp/asyncio transports, which copy 40 MB per POST)."""

    def __init__(self, sock: socket.socket, host: str) -> None:
        self._sock, self._host = sock, host
        self._buf = bytearray()

    @classmethod
    async def open(cls, port: int) -> Connection:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(sock, f"127.0.0.1:{port}")

    def close(self) -> None:
        self._sock.close()

    async def post(self, path: str, body: bytes) -> bytes:
        """POST `body` to `path`; the reply body (HTTP 200 required)."""
        loop = asyncio.get_running_loop()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        await loop.sock_sendall(self._sock, head)
        await loop.sock_sendall(self._sock, body)
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            await self._recv()
        head_bytes, status = bytes(self._buf[:end]), int(self._buf[9:12])
        length = content_length(head_bytes)
        if length is None:
            raise RuntimeError(f"{path}: reply without Content-Length: {head_bytes[:200]!r}")
        while len(self._buf) < end + 4 + length:
            await self._recv()
        reply = bytes(self._buf[end + 4:end + 4 + length])
        del self._buf[:end + 4 + length]
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}: {reply[:200]!r}")
        return reply

    async def _recv(self) -> None:
        chunk = await asyncio.get_running_loop().sock_recv(self._sock, 65536)
        if not chunk:
            raise ConnectionError("connection closed by the peer")
        self._buf += chunk


async def post_all(conns: Sequence[Connection], path: str, bodies: Sequence[bytes]) -> tuple[float, list[bytes]]:
    """POST every body, one client per connection; (wall seconds from first send to last reply, replies in order)."""
    replies: list[bytes] = [b""] * len(bodies)
    next_index = 0

    async def worker(conn: Connection) -> None:
        nonlocal next_index
        while next_index < len(bodies):
            i, next_index = next_index, next_index + 1
            replies[i] = await conn.post(path, bodies[i])

    start = time.perf_counter()
    async with asyncio.timeout(POST_TIMEOUT_S):
        await asyncio.gather(*(worker(c) for c in conns))
    return time.perf_counter() - start, replies


async def admit(conns: Sequence[Connection], fl_name: str, fl_ids: Sequence[str]) -> int:
    """startFLJob for every device (retrying through safemode and the previous iteration); the iteration joined."""
    deadline = time.monotonic() + ITERATION_TIMEOUT_S
    joined: set[int] = set()
    pending = list(fl_ids)

    async def worker(conn: Connection) -> None:
        while pending:
            fl_id = pending.pop()
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{fl_id} not admitted within {ITERATION_TIMEOUT_S} s")
                reply = await conn.post("/startFLJob", rq.build_request_fl_job(fl_name, fl_id, 0, 1, TIMESTAMP))
                if not reply.startswith(b"The "):  # plain text: safemode or job not available
                    view = rs.parse_response_fl_job(reply)
                    if view.retcode == 200:
                        joined.add(view.iteration)
                        break
                await asyncio.sleep(0.01)

    await asyncio.gather(*(worker(c) for c in conns))
    if len(joined) != 1:
        raise RuntimeError(f"devices joined different iterations {sorted(joined)}")
    return joined.pop()


def build_bodies(case: Case, fl_name: str, fl_ids: Sequence[str], iteration: int) -> list[bytes]:
    weights = list(case.weights.items())
    return [rq.build_request_update_model(fl_name, fl_id, iteration, weights, TIMESTAMP) for fl_id in fl_ids]


def check_accepted(replies: Sequence[bytes]) -> None:
    for reply in replies:
        if reply.startswith(b"The "):
            raise RuntimeError(f"updateModel answered plain text: {reply[:200]!r}")
        view = rs.parse_response_update_model(reply)
        if view.retcode != 200:
            raise RuntimeError(f"updateModel refused: {view.retcode} {view.reason}")


@dataclass
class Timings:
    server_s: list[float]
    sink_s: list[float]
    body_bytes: int


async def measure_case(case: Case, server_port: int, sink_port: int, fl_name: str, clients: int,
                       repeats: int) -> Timings:
    fl_ids = [f"dev{i:06d}" for i in range(case.requests)]
    timings = Timings([], [], 0)
    server = [await Connection.open(server_port) for _ in range(clients)]
    sink = [await Connection.open(sink_port) for _ in range(clients)]
    try:
        for rep in range(repeats + 1):  # the first iteration warms up connections, pages and code paths
            iteration = await admit(server, fl_name, fl_ids)
            bodies = build_bodies(case, fl_name, fl_ids, iteration)
            timings.body_bytes = sum(len(b) for b in bodies)
            server_s, replies = await post_all(server, "/updateModel", bodies)
            check_accepted(replies)
            sink_s, _ = await post_all(sink, "/updateModel", bodies)
            del bodies, replies
            if rep:
                timings.server_s.append(server_s)
                timings.sink_s.append(sink_s)
    finally:
        for conn in server + sink:
            conn.close()
    return timings


def run_case(case: Case, redis: EmbeddedRedis, work: Path, clients: int, repeats: int,
             update_log: str) -> Timings:
    """One server with `update_log`; under "replica" a second server of the job holds the copies (no device
    talks to it)."""
    fl_name = f"ingest_{case.label}_{update_log}_{os.getpid()}"
    yaml_path, model_path = work / f"{case.label}.yaml", work / f"{case.label}.npz"
    write_yaml(yaml_path, fl_name, redis.address, case.requests)
    np.savez(model_path, **case.weights)  # type: ignore[arg-type]
    server_port, sink_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        stack.enter_context(child(server_argv(yaml_path, model_path, server_port, redis.address, work, update_log),
                                  server_port, work / f"server_{case.label}.log", work))
        if update_log == "replica":
            stack.enter_context(replica_holder(yaml_path, model_path, redis.address, work,
                                               work / f"holder_{case.label}.log"))
        stack.enter_context(child(sink_argv(sink_port), sink_port, work / f"sink_{case.label}.log", REPO))
        return asyncio.run(measure_case(case, server_port, sink_port, fl_name, clients, repeats))


# ---------------------------------------------------------------------------------------------- report


def figures_of(case: Case, t: Timings, clients: int) -> dict[str, float | int]:
    n, mb = case.requests, t.body_bytes / 1e6
    server_s, sink_s = min(t.server_s), min(t.sink_s)
    p = case.label
    return {
        f"{p}_floats": case.floats, f"{p}_clients": clients, f"{p}_requests": n,
        f"{p}_body_bytes": t.body_bytes // n,
        f"{p}_server_rps": n / server_s, f"{p}_server_mbps": mb / server_s,
        f"{p}_sink_rps": n / sink_s, f"{p}_sink_mbps": mb / sink_s,
        f"{p}_ratio": sink_s / server_s,
        f"{p}_server_median_mbps": mb / float(np.median(t.server_s)),
        f"{p}_sink_median_mbps": mb / float(np.median(t.sink_s)),
    }


def main(argv: list[str] | None = None) -> None:
    """Parses arguments, measures every case, prints the table and writes the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.splitlines()[0])
    add_common_args(parser, default_repeats=5)
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (default %(default)s)")
    parser.add_argument("--only", choices=[c.label for c in cases()], default=None, help="run one case")
    parser.add_argument("--modes", default="off,on,replica", help="--update_log modes to run (default %(default)s)")
    args = parser.parse_args(argv)
    figures: dict[str, float | int | str] = {"repeats": args.repeats, "clients": args.clients}
    rows = []
    with tempfile.TemporaryDirectory(prefix="mindfed-ingest-") as tmp, EmbeddedRedis() as redis:
        for case in cases():
            if args.only and case.label != args.only:
                continue
            print(f"{case.label}: {case.floats:,} floats, {case.requests} updates per iteration, "
                  f"{args.clients} clients, best of {args.repeats} ...", flush=True)
            for update_log in args.modes.split(","):  # off: the server as in issue 2; then durable
                t = run_case(case, redis, Path(tmp), args.clients, args.repeats, update_log)
                variant = replace(case, label=case.label + MODE_SUFFIX[update_log])
                f = figures_of(variant, t, args.clients)
                figures.update(f)
                p = variant.label
                rows.append((p, args.clients, case.requests, f[f"{p}_server_rps"], f[f"{p}_server_mbps"],
                             f[f"{p}_sink_rps"], f[f"{p}_sink_mbps"], f[f"{p}_ratio"]))
    print()
    print_table(["case", "clients", "requests", "server req/s", "server MB/s", "sink req/s", "sink MB/s",
                 "server/sink"], rows)
    for p, *_ in rows:
        server_med, sink_med = figures[f"{p}_server_median_mbps"], figures[f"{p}_sink_median_mbps"]
        print(f"{p}: sink {figures[f'{p}_sink_mbps'] / 1e3:.2f} GB/s (performance-limits: raw BufferedProtocol "
              f"4.46 GB/s, sender on another core); medians: server {server_med:.0f}, sink {sink_med:.0f} MB/s")
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
