"""Whole FedAvg rounds end to end: a real `mindfed server` (and its embedded Redis) against N devices on loopback.

Run: `python -m benchmarks.round [--quick] [--cases 8x61706,32x1M] [--rounds 5] [--update_log on|off] [--json PATH]`
     `python -m benchmarks.round --scale [--scale_devices 1000,10000]`

For each case (N devices, D float32) the benchmark starts `mindfed server` (`python -m mindfed.cli.main server`, which
starts its own embedded redis-server) with start_fl_job_threshold N and update_model_ratio 1.0, then runs N devices in
this one asyncio process, each on its own keep-alive HTTP/1.1 connection, speaking MindSpore's device protocol with
the raw FlatBuffers builders: startFLJob (download the model), updateModel with (w + 1e-3)·n (n = 1 + i % 7), getResult
polled until SUCCEED, getModel. Every device every round, `--rounds` rounds after one warm-up round. Each device checks
that the model it got from startFLJob and from getModel is exactly the one every other device got (bytewise) and, to
float32 accuracy, the expected one: round k's startFLJob model is round k-1's getModel model (round 1: the initial
model) and getModel's is the FedAvg Σ(w+1e-3)·n_i / Σ n_i of the uploads (computed in float64 here).

Per round: wall time (first startFLJob sent to last getModel answered), CPU seconds (utime + stime, psutil) of the
server tree (the launcher and its server process) and of redis-server separately, the peak RSS (VmHWM) of the server
process and of redis-server beside the server's idle RSS (serving, model loaded, before the first device) and the
issue's bound for the peak, idle + 4 x model bytes, the most the server's memory files held at a round's end (its
cached startFLJob and getModel answers: shared memory the RSS does not count, as it sends them with sendfile and
never maps them), bytes up/down on the wire (HTTP heads and bodies) and requests sent. The figure of a case is its
best round for wall time (the machine is shared: noisy) and the mean over the rounds for CPU (psutil counts 10 ms ticks:
one round of a small case is off by up to a tick per process); the JSON also has medians and the best.
The peer column is Flower 1.41's legacy gRPC server measured on this machine kind (issue 13), same workload; "ratio"
is mindfed / Flower server CPU. The server runs with `--update_log on` (its default, and the issue's table): every
accepted update is in Redis before its answer, which Flower does not do at all; `--update_log off` measures the same
rounds without that durability, like for like with Flower.

`--scale`: one server, LeNet-5 (61,706 floats), N ∈ {1,000; 10,000} devices in one round, all connected at once. It
prints the round time, peak RSS, connection errors and safemode answers (both must be 0) and any refusal. Its server
runs with `client.receive_buffer_bytes` 16 KiB (`--scale_receive_buffer`, 0 for the kernel's buffers), and its devices
have a device-sized socket send buffer (SCALE_DEVICE_SNDBUF_BYTES): see there why.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import yaml

from benchmarks.http_sink import content_length
from benchmarks.probe import child_pythonpath, print_table, terminate, write_json
from mindfed.cache.embedded import free_port, wait_for_port
from mindfed.model.lenet import init_lenet5
from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs
from mindfed.protocol.plain_text import classify_plain_text

REPO = Path(__file__).resolve().parents[1]
LENET_YAML = REPO / "yamls" / "lenet.yaml"
LENET_FLOATS = 61_706
START_TIMEOUT_S = 90.0
ROUND_TIMEOUT_S = 600.0  # bounds every round; a stuck round fails the benchmark instead of hanging it
# --scale's devices share this machine's kernel with the server. Over loopback Linux sizes a new socket's send buffer
# for its 64 KiB segments (4 MB here), so 10,000 devices would park their whole 247 kB uploads in this kernel's TCP
# memory, past net.ipv4.tcp_mem's pressure threshold, where the kernel drops segments of every connection (and
# retransmission timeouts back off to tens of seconds). A device's unsent body is in the device's memory, not in the
# server machine's kernel: a device-sized send buffer keeps it in this process.
SCALE_DEVICE_SNDBUF_BYTES = 32 * 1024
# --scale's server bounds what a waiting request holds (client.receive_buffer_bytes, server/read_pacing.py): without it
# 10,000 waiting LeNet uploads hold ~2.6 GB in the server process.
SCALE_RECEIVE_BUFFER_BYTES = 16 * 1024
POLL_HOLD_MS = 10_000  # client.poll_hold_ms of every server the benchmark starts (the default, 0, answers at once)
STEP = np.float32(1e-3)
NO_COMPRESS = (0,)

# Flower 1.41 legacy gRPC server, issue 13 (same machine kind, same workload): round wall s, server CPU s, peak MiB.
FLOWER: dict[tuple[int, int], tuple[float, float, float]] = {
    (8, 61_706): (0.024, 0.015, 105), (32, 61_706): (0.147, 0.085, 148), (100, 61_706): (0.821, 0.380, 283),
    (8, 1_000_000): (0.282, 0.187, 441), (32, 1_000_000): (2.06, 0.910, 1105), (8, 10_000_000): (5.77, 4.05, 1920),
}
DEFAULT_CASES = list(FLOWER)
QUICK_CASES = [(8, 61_706), (32, 61_706), (8, 1_000_000)]


def parse_size(text: str) -> int:
    text = text.strip().upper().replace(",", "").replace("_", "")
    for suffix, mult in (("M", 1_000_000), ("K", 1_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * mult)
    return int(text)


def parse_cases(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        n, d = item.lower().split("x")
        out.append((int(n), parse_size(d)))
    return out


# ---------------------------------------------------------------------------------------------- the server


def initial_weights(floats: int) -> dict[str, np.ndarray]:
    """LeNet-5 (10 classes, 1 channel) at 61,706 floats: `init_lenet5(10, 1)` (61,684) plus the two conv biases
    Flower's LeNet has (6 + 16, zeros); else one tensor "w" of `floats` N(0,1) values."""
    if floats == LENET_FLOATS:
        lenet = init_lenet5(10, 1)
        weights = {n: lenet.flat(n).astype(np.float32) for n in lenet.names}
        weights.update({"conv1.bias": np.zeros(6, np.float32), "conv2.bias": np.zeros(16, np.float32)})
        return weights
    return {"w": np.random.default_rng(0).standard_normal(floats, dtype=np.float32)}


def write_yaml(path: Path, fl_name: str, devices: int, rounds: int, receive_buffer_bytes: int = 0) -> None:
    """The seed's lenet.yaml with an embedded Redis, every device admitted and no timer firing during a run;
    `receive_buffer_bytes`: client.receive_buffer_bytes (0: the kernel's buffers, the default)."""
    cfg = yaml.safe_load(LENET_YAML.read_text(encoding="utf-8"))
    cfg["fl_name"] = fl_name
    cfg["fl_iteration_num"] = rounds + 10
    cfg["distributed_cache"]["address"] = ""  # `mindfed server` starts and owns a redis-server
    cfg["round"].update(start_fl_job_threshold=devices, start_fl_job_time_window=3_600_000, update_model_ratio=1.0,
                        update_model_time_window=3_600_000, global_iteration_time_window=7_200_000)
    cfg["summary"]["data_rate_dir"] = ""
    cfg["unsupervised"]["eval_type"] = "NOT_EVAL"
    cfg["compression"]["download_compress_type"] = "NO_COMPRESS"
    # long polling of getResult/getModel: each device asks once and gets its answer as the iteration ends
    cfg.setdefault("client", {}).update(receive_buffer_bytes=receive_buffer_bytes, poll_hold_ms=POLL_HOLD_MS)
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")


@dataclass
class Server:
    """A running `mindfed server` tree: the launcher, its server process and its redis-server."""

    launcher: subprocess.Popen[bytes]
    port: int
    log_dir: Path
    server: psutil.Process = field(init=False)
    redis: psutil.Process = field(init=False)

    def find_children(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            kids = psutil.Process(self.launcher.pid).children(recursive=True)
            redis = [p for p in kids if "redis" in p.name()]
            servers = [p for p in kids if p not in redis]
            if redis and servers:
                self.redis, self.server = redis[0], servers[0]
                return
            time.sleep(0.1)
        raise RuntimeError("mindfed server did not start its server process and redis-server")

    def cpu(self) -> tuple[float, float]:
        """(server tree CPU s, redis-server CPU s) so far."""
        tree = 0.0
        for proc in (psutil.Process(self.launcher.pid), self.server):
            t = proc.cpu_times()
            tree += t.user + t.system
        r = self.redis.cpu_times()
        return tree, r.user + r.system

    def peak_mib(self) -> tuple[float, float]:
        """(server process VmHWM, redis-server VmHWM) in MiB."""
        return _hwm_mib(self.server.pid), _hwm_mib(self.redis.pid)

    def rss_mib(self) -> float:
        return float(self.server.memory_info().rss) / 2**20

    def memfd_mib(self) -> float:
        """What the server's memory files hold (its cached startFLJob/getModel answers, server/shared_body.py): shared
        memory, in the machine's memory but not in the process's RSS while it is not mapped."""
        total = 0
        fds = Path(f"/proc/{self.server.pid}/fd")
        for fd in fds.iterdir():
            try:
                if str(fd.readlink()).startswith("/memfd:"):
                    total += fd.stat().st_blocks * 512
            except OSError:  # closed meanwhile
                continue
        return total / 2**20

    def settled_rss_mib(self, timeout_s: float = 10.0) -> float:
        """The RSS once start-up's work is done (the port opens while the initial model is still being published):
        the first of two readings 0.5 s apart that differ by under 1 MiB, or the last one after `timeout_s`."""
        deadline, last = time.monotonic() + timeout_s, self.rss_mib()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.rss_mib()
            if abs(now - last) < 1.0:
                return now
            last = now
        return last

    def log_text(self) -> str:
        logs = sorted(self.log_dir.glob("server_*/server.log"))
        return logs[0].read_text(errors="replace") if logs else ""

    def log_tail(self) -> str:
        return self.log_text()[-3000:]


def _hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(work: Path, fl_name: str, devices: int, rounds: int, weights: dict[str, np.ndarray],
                 receive_buffer_bytes: int = 0, update_log: str = "on") -> Server:
    yaml_path = work / "job.yaml"
    write_yaml(yaml_path, fl_name, devices, rounds, receive_buffer_bytes)
    port = free_port()
    argv = [sys.executable, "-m", "mindfed.cli.main", "server", "--yaml_config", str(yaml_path),
            "--http_server_address", f"127.0.0.1:{port}", "--checkpoint_dir", "", "--output_dir", str(work),
            "--log_dir", str(work / "logs")]
    model_path = work / "model.npz"
    np.savez(model_path, **weights)  # type: ignore[arg-type]
    argv += ["--model", str(model_path), "--update_log", update_log]
    env = {**os.environ, "MINDFED_LOG_LEVEL": os.environ.get("MINDFED_LOG_LEVEL", "WARNING"),
           "PYTHONPATH": child_pythonpath()}
    launcher = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                stdout=(work / "launcher.log").open("wb"), stderr=subprocess.STDOUT)
    server = Server(launcher, port, work / "logs")
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if launcher.poll() is not None:
                raise RuntimeError(f"mindfed server exited with {launcher.returncode}: "
                                   f"{(work / 'launcher.log').read_text()[-2000:]}{server.log_tail()}")
            try:
                wait_for_port("127.0.0.1", port, 0.5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
        server.find_children(deadline)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    terminate(server.launcher, 30)  # the launcher stops its own server process and redis-server, by their pids


# ---------------------------------------------------------------------------------------------- the devices


@dataclass
class Counters:
    up: int = 0
    down: int = 0
    requests: int = 0
    connection_errors: int = 0
    safemode: int = 0  # answers with the safemode text on startFLJob/updateModel: a device turned away
    switch_safemode: int = 0  # on getResult/getModel, which need no Redis: only the iteration switch (spec 4.6)
    other_text: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    texts: dict[str, int] = field(default_factory=dict)  # plain-text answers by round and text


class Connection:
    """One keep-alive HTTP/1.1 connection: bodies go out from the caller's bytes, replies land in one buffer sized
    from Content-Length (the client shares the machine's two cores with the server: keep it cheap). `sndbuf_bytes`:
    the socket's SO_SNDBUF (0: the kernel's)."""

    def __init__(self, port: int, counters: Counters, sndbuf_bytes: int = 0) -> None:
        self._port, self._counters, self._sndbuf_bytes = port, counters, sndbuf_bytes
        self._sock: socket.socket | None = None
        self._buf = bytearray()

    async def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._sndbuf_bytes:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._sndbuf_bytes)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self._port))
        except BaseException:
            sock.close()
            raise
        self._buf = bytearray()
        return sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def post(self, path: str, body: bytes) -> bytes:
        """POST `body`; the reply body. A connection error is counted, and the request is sent again on a new
        connection (three tries), as a device's HTTP client does."""
        for attempt in range(3):
            try:
                if self._sock is None:
                    self._sock = await self._connect()
                return await self._exchange(self._sock, path, body)
            except (ConnectionError, OSError) as exc:
                self._counters.connection_errors += 1
                self.close()
                if attempt == 2:
                    raise ConnectionError(f"{path}: {exc!r}") from exc
                await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    async def _exchange(self, sock: socket.socket, path: str, body: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        await loop.sock_sendall(sock, head)
        await loop.sock_sendall(sock, body)
        self._counters.requests += 1
        self._counters.up += len(head) + len(body)
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            await self._recv(sock)
        head_bytes = bytes(self._buf[:end])
        status = int(head_bytes[9:12])
        length = content_length(head_bytes)
        if length is None:
            raise RuntimeError(f"{path}: reply without Content-Length: {head_bytes[:200]!r}")
        have = len(self._buf) - end - 4
        if have >= length:
            reply = bytes(self._buf[end + 4:end + 4 + length])
            del self._buf[:end + 4 + length]
        else:
            out = bytearray(length)
            view = memoryview(out)
            view[:have] = self._buf[end + 4:]
            self._buf = bytearray()
            pos = have
            while pos < length:
                n = await loop.sock_recv_into(sock, view[pos:])
                if not n:
                    raise ConnectionError("connection closed by the server mid-reply")
                pos += n
            view.release()
            reply = out  # type: ignore[assignment]
        self._counters.down += end + 4 + length
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}: {bytes(reply[:200])!r}")
        return reply

    async def _recv(self, sock: socket.socket) -> None:
        chunk = await asyncio.get_running_loop().sock_recv(sock, 262144)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self._buf += chunk


def _plain(reply: bytes, counters: Counters, round_name: str) -> str | None:
    kind = classify_plain_text(reply)
    if kind == "safemode" and round_name in ("getResult", "getModel"):
        counters.switch_safemode += 1
    elif kind == "safemode":
        counters.safemode += 1
    elif kind is not None:
        counters.other_text += 1
    if kind is not None:
        _refused(counters.texts, f"{round_name}: {bytes(reply[:80]).decode(errors='replace')}")
    return kind


def _refused(counts: Counters | dict[str, int], what: str) -> None:
    table = counts.refusals if isinstance(counts, Counters) else counts
    table[what] = table.get(what, 0) + 1


def tensors(view: rs.ResponseFLJobView | rs.ResponseGetModelView) -> list[tuple[str, np.ndarray]]:
    return [(t.name, np.asarray(t.data)) for t in view.feature_map]


def aggregate_rtol(devices: int) -> float:
    """How far the float32 FedAvg of `devices` uploads may be from the float64 one: the rounding of a float32 sum
    grows like sqrt(N) eps in the typical case (MindSpore sums in float32 too); 1e-5 up to 100 devices."""
    return max(1e-5, 1e-6 * float(np.sqrt(devices)))


class Reference:
    """The model every device must get this round: the first device's copy, checked bytewise by the others."""

    def __init__(self, expected: dict[str, np.ndarray], rtol: float) -> None:
        self.expected, self.rtol = expected, rtol
        self.first: dict[str, bytes] | None = None
        self.max_rel_err = 0.0
        self.mismatches = 0

    def check(self, got: list[tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
        if self.first is None:
            if sorted(n for n, _ in got) != sorted(self.expected):
                self.mismatches += 1
                print(f"  model names {[n for n, _ in got]} != {sorted(self.expected)}", flush=True)
                return {}
            for name, data in got:
                exp = self.expected[name].astype(np.float64)
                err = float(np.max(np.abs(data.astype(np.float64) - exp) / np.maximum(np.abs(exp), 1e-3)))
                self.max_rel_err = max(self.max_rel_err, err)
                if err > self.rtol:
                    self.mismatches += 1
            self.first = {n: d.tobytes() for n, d in got}
            return {n: np.array(d) for n, d in got}
        if len(got) != len(self.first) or any(d.tobytes() != self.first.get(n) for n, d in got):
            self.mismatches += 1
        return {}


@dataclass
class Device:
    index: int
    fl_id: str
    data_size: int
    conn: Connection


async def device_round(dev: Device, fl_name: str, last_iteration: int, start_ref: Reference, end_ref: Reference,
                       uploads: dict[int, list[tuple[str, np.ndarray]]], counters: Counters, poll_s: float,
                       joined: list[int]) -> None:
    """One device's round: join, upload, wait for the result, download the model."""
    conn = dev.conn
    while True:  # startFLJob until admitted
        reply = await conn.post("/startFLJob", rq.build_request_fl_job(fl_name, dev.fl_id, last_iteration,
                                                                       dev.data_size, "1700000000000", NO_COMPRESS))
        if _plain(reply, counters, "startFLJob") is not None:
            await asyncio.sleep(poll_s)
            continue
        job = rs.parse_response_fl_job(reply)
        if job.retcode == 200:
            break
        if job.retcode == 300:  # OutOfTime: the previous iteration is still switching
            await asyncio.sleep(poll_s)
            continue
        _refused(counters, f"startFLJob {job.retcode}: {job.reason}")
        return
    iteration = job.iteration
    start_ref.check(tensors(job))
    del job, reply
    body = rq.build_request_update_model(fl_name, dev.fl_id, iteration, uploads[dev.data_size], "1700000000000")
    reply = await conn.post("/updateModel", body)
    del body
    if _plain(reply, counters, "updateModel") is not None:
        _refused(counters, f"updateModel text: {bytes(reply[:120])!r}")
        return
    answer = rs.parse_response_update_model(reply)
    if answer.retcode != 200:
        _refused(counters, f"updateModel {answer.retcode}: {answer.reason}")
        return
    joined.append(iteration)
    get_result = rq.build_request_get_result(fl_name, iteration, "1700000000000")
    while True:
        reply = await conn.post("/getResult", get_result)
        if _plain(reply, counters, "getResult") is None and rs.parse_response_get_result(reply).retcode == 200:
            break
        await asyncio.sleep(poll_s)
    get_model = rq.build_request_get_model(fl_name, iteration, "1700000000000", NO_COMPRESS)
    while True:
        reply = await conn.post("/getModel", get_model)
        if _plain(reply, counters, "getModel") is None:
            view = rs.parse_response_get_model(reply)
            if view.retcode == 200:
                end_ref.check(tensors(view))
                return
        await asyncio.sleep(poll_s)


def fedavg(model: dict[str, np.ndarray], sizes: Sequence[int]) -> tuple[dict[int, list[tuple[str, np.ndarray]]],
                                                                      dict[str, np.ndarray]]:
    """The uploads per data size ((w + 1e-3)·n in float32) and their FedAvg Σ u_i / Σ n_i (float64, then float32)."""
    uploads = {n: [(k, (w + STEP) * np.float32(n)) for k, w in model.items()] for n in sorted(set(sizes))}
    total = float(sum(sizes))
    counts = {n: sizes.count(n) for n in set(sizes)} if isinstance(sizes, list) else {}
    expected = {}
    for i, k in enumerate(model):
        acc = np.zeros(model[k].size, np.float64)
        for n, c in counts.items():
            acc += uploads[n][i][1].astype(np.float64) * c
        expected[k] = (acc / total).astype(np.float32)
    return uploads, expected


@dataclass
class RoundFigures:
    wall_s: float
    server_cpu_s: float
    redis_cpu_s: float
    up: int
    down: int
    requests: int
    max_rel_err: float
    mismatches: int
    memfd_mib: float = 0.0  # the server's cached answers in memory files at the round's end (not in its RSS)


async def run_rounds(server: Server, fl_name: str, devices: int, rounds: int, model: dict[str, np.ndarray],
                     poll_s: float, counters: Counters, on_round: object = None,
                     sndbuf_bytes: int = 0) -> list[RoundFigures]:
    """`rounds` rounds of every device; figures of each (the caller drops the warm-up)."""
    sizes = [1 + i % 7 for i in range(devices)]
    devs = [Device(i, f"bench_{i:05d}", sizes[i], Connection(server.port, counters, sndbuf_bytes))
            for i in range(devices)]
    figures = []
    last_iteration = 0
    current = model
    try:
        for _ in range(rounds):
            uploads, expected = fedavg(current, sizes)
            start_ref, end_ref = Reference(current, 0.0), Reference(expected, aggregate_rtol(devices))
            joined: list[int] = []
            before = (counters.up, counters.down, counters.requests)
            cpu0, redis0 = server.cpu()
            t0 = time.perf_counter()
            async with asyncio.timeout(ROUND_TIMEOUT_S):
                await asyncio.gather(*(device_round(d, fl_name, last_iteration, start_ref, end_ref, uploads,
                                                    counters, poll_s, joined) for d in devs))
            wall = time.perf_counter() - t0
            cpu1, redis1 = server.cpu()
            if counters.refusals or len(joined) != devices or len(set(joined)) != 1:
                raise RuntimeError(f"round not completed by every device: {len(joined)}/{devices} in "
                                   f"{sorted(set(joined))}, refusals {counters.refusals}\n{server.log_tail()}")
            mismatches = start_ref.mismatches + end_ref.mismatches + (end_ref.first is None)
            figures.append(RoundFigures(wall, cpu1 - cpu0, redis1 - redis0, counters.up - before[0],
                                        counters.down - before[1], counters.requests - before[2],
                                        max(start_ref.max_rel_err, end_ref.max_rel_err), mismatches,
                                        server.memfd_mib()))
            last_iteration = joined[0]
            assert end_ref.first is not None
            current = {k: np.frombuffer(v, np.float32) for k, v in end_ref.first.items()}
    finally:
        for d in devs:
            d.conn.close()
    return figures


# ---------------------------------------------------------------------------------------------- modes


def run_case(devices: int, floats: int, rounds: int, poll_s: float, update_log: str = "on") -> dict[str, float | int]:
    weights = initial_weights(floats)
    assert sum(w.size for w in weights.values()) == floats
    fl_name = f"round_{devices}x{floats}_{os.getpid()}"
    counters = Counters()
    with tempfile.TemporaryDirectory(prefix="mindfed-round-") as tmp:
        server = start_server(Path(tmp), fl_name, devices, rounds + 1, weights, update_log=update_log)
        try:
            idle = server.settled_rss_mib()  # serving, the model loaded, no device yet
            figs = asyncio.run(run_rounds(server, fl_name, devices, rounds + 1, weights, poll_s, counters))[1:]
            peak, redis_peak = server.peak_mib()
        finally:
            stop_server(server)
    best = min(figs, key=lambda f: f.server_cpu_s + f.redis_cpu_s)
    p = f"n{devices}_d{floats}"
    # CPU per round is the mean over the measured rounds: psutil counts in 10 ms ticks, so one small round's figure
    # is off by up to a tick per process (a best-of-N of such figures is biased low); the sum of back-to-back rounds
    # is off by a tick in all.
    server_cpu = sum(f.server_cpu_s for f in figs) / len(figs)
    redis_cpu = sum(f.redis_cpu_s for f in figs) / len(figs)
    return {
        f"{p}_wall_s": min(f.wall_s for f in figs), f"{p}_wall_median_s": statistics.median(f.wall_s for f in figs),
        f"{p}_cpu_s": server_cpu + redis_cpu, f"{p}_server_cpu_s": server_cpu, f"{p}_redis_cpu_s": redis_cpu,
        f"{p}_cpu_best_s": best.server_cpu_s + best.redis_cpu_s,
        f"{p}_cpu_median_s": statistics.median(f.server_cpu_s + f.redis_cpu_s for f in figs),
        f"{p}_idle_mib": idle, f"{p}_peak_mib": peak, f"{p}_redis_peak_mib": redis_peak,
        f"{p}_peak_bound_mib": idle + 4 * floats * 4 / 2**20, f"{p}_memfd_mib": max(f.memfd_mib for f in figs),
        f"{p}_up_mb": figs[-1].up / 1e6, f"{p}_down_mb": figs[-1].down / 1e6, f"{p}_requests": figs[-1].requests,
        f"{p}_max_rel_err": max(f.max_rel_err for f in figs), f"{p}_mismatches": sum(f.mismatches for f in figs),
        f"{p}_safemode": counters.safemode, f"{p}_connection_errors": counters.connection_errors,
    }


def run_scale(devices: int, poll_s: float, receive_buffer_bytes: int) -> dict[str, float | int | str]:
    weights = initial_weights(LENET_FLOATS)
    fl_name = f"scale_{devices}_{os.getpid()}"
    counters = Counters()
    with tempfile.TemporaryDirectory(prefix="mindfed-round-") as tmp:
        server = start_server(Path(tmp), fl_name, devices, 1, weights, receive_buffer_bytes)
        try:
            idle = server.settled_rss_mib()
            error = ""
            try:
                figs = asyncio.run(run_rounds(server, fl_name, devices, 1, weights, poll_s, counters,
                                              sndbuf_bytes=SCALE_DEVICE_SNDBUF_BYTES))
            except Exception as exc:  # report what broke beside the counters
                error, figs = f"{type(exc).__name__}: {str(exc)[:1500]}", []
            peak, redis_peak = server.peak_mib()
        finally:
            stop_server(server)
            warnings = [line for line in server.log_text().splitlines() if "WARNING" in line or "ERROR" in line]
    for text, count in sorted(counters.texts.items()):
        print(f"  plain-text answers: {count} x {text!r}", flush=True)
    for line in warnings[:8]:
        print(f"  server log: {line[:300]}", flush=True)
    p = f"scale{devices}"
    out: dict[str, float | int | str] = {
        f"{p}_round_s": figs[0].wall_s if figs else float("nan"),
        f"{p}_server_cpu_s": figs[0].server_cpu_s if figs else float("nan"),
        f"{p}_redis_cpu_s": figs[0].redis_cpu_s if figs else float("nan"),
        f"{p}_idle_mib": idle, f"{p}_peak_mib": peak, f"{p}_redis_peak_mib": redis_peak,
        f"{p}_requests": counters.requests, f"{p}_connection_errors": counters.connection_errors,
        f"{p}_safemode": counters.safemode, f"{p}_switch_safemode": counters.switch_safemode,
        f"{p}_other_text": counters.other_text,
        f"{p}_mismatches": figs[0].mismatches if figs else -1,
        f"{p}_max_rel_err": figs[0].max_rel_err if figs else float("nan"), f"{p}_rtol": aggregate_rtol(devices),
    }
    if error:
        out[f"{p}_error"] = error
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.round", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the figures as a flat JSON object")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per case, after one warm-up")
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_CASES}")
    parser.add_argument("--cases", default="", help="NxD,... (e.g. 8x61706,32x1M); default: the issue's six rows")
    parser.add_argument("--poll_s", type=float, default=0.01, help="getResult/retry interval of a device")
    parser.add_argument("--scale", action="store_true", help="the scale mode: LeNet, one round, many devices")
    parser.add_argument("--scale_devices", default="1000,10000", help="device counts of --scale")
    parser.add_argument("--scale_poll_s", type=float, default=0.5, help="getResult/retry interval under --scale")
    parser.add_argument("--scale_receive_buffer", type=int, default=SCALE_RECEIVE_BUFFER_BYTES,
                        help="client.receive_buffer_bytes of the --scale server (0: the kernel's buffers)")
    parser.add_argument("--update_log", choices=("on", "off"), default="on",
                        help="the server's --update_log (default %(default)s, the server's own default; off: no update "
                             "is durable before its acknowledgement, as with Flower)")
    args = parser.parse_args(argv)
    figures: dict[str, float | int | str] = {"rounds": args.rounds, "update_log": args.update_log,
                                             "scale_receive_buffer_bytes": args.scale_receive_buffer}
    ok = True
    if args.scale:
        rows = []
        for n in [int(x) for x in args.scale_devices.split(",")]:
            print(f"scale: {n:,} devices, LeNet-5 ({LENET_FLOATS:,} floats), one round, "
                  f"client.receive_buffer_bytes {args.scale_receive_buffer} ...", flush=True)
            f = run_scale(n, args.scale_poll_s, args.scale_receive_buffer)
            figures.update(f)
            p = f"scale{n}"
            rows.append((n, f[f"{p}_round_s"], f[f"{p}_server_cpu_s"], f[f"{p}_redis_cpu_s"], f[f"{p}_idle_mib"],
                         f[f"{p}_peak_mib"], f[f"{p}_redis_peak_mib"], f[f"{p}_requests"],
                         f[f"{p}_connection_errors"], f[f"{p}_safemode"], f[f"{p}_switch_safemode"],
                         f[f"{p}_mismatches"], f"{f[f'{p}_max_rel_err']:.1e} ({f[f'{p}_rtol']:.0e})"))
            if f"{p}_error" in f:
                print(f"  FAILED: {f[f'{p}_error']}", flush=True)
            ok = (ok and f"{p}_error" not in f and f[f"{p}_connection_errors"] == 0 and f[f"{p}_safemode"] == 0
                  and f[f"{p}_mismatches"] == 0)
        print()
        print_table(["devices", "round s", "server CPU s", "redis CPU s", "idle RSS MiB", "peak RSS MiB",
                     "redis peak MiB", "requests", "conn errors", "safemode", "switch safemode", "model mismatches",
                     "max rel err (rtol)"], rows)
        print("safemode: startFLJob/updateModel answered the safemode text (must be 0); switch safemode: getResult "
              "polls answered it during the iteration switch, as MindSpore does (the device polls again)")
    else:
        cases = parse_cases(args.cases) if args.cases else (QUICK_CASES if args.quick else DEFAULT_CASES)
        rows = []
        for n, d in cases:
            print(f"{n} devices x {d:,} floats: {args.rounds} rounds after a warm-up ...", flush=True)
            f = run_case(n, d, args.rounds, args.poll_s, args.update_log)
            figures.update(f)
            p = f"n{n}_d{d}"
            flower = FLOWER.get((n, d))
            ratio = f[f"{p}_cpu_s"] / flower[1] if flower else float("nan")
            if flower:
                figures[f"{p}_ratio_to_flower"] = ratio
            rows.append((n, f"{d:,}", f[f"{p}_wall_s"], f"{flower[0]:.3f}" if flower else "-",
                         f"{f[f'{p}_cpu_s']:.3f} ({f[f'{p}_redis_cpu_s']:.3f})",
                         f"{flower[1]:.3f}" if flower else "-", f"{ratio:.2f}x" if flower else "-",
                         f"{f[f'{p}_peak_mib']:.0f} (+{f[f'{p}_redis_peak_mib']:.0f}), {f[f'{p}_memfd_mib']:.0f}",
                         f"{f[f'{p}_idle_mib']:.0f} / {f[f'{p}_peak_bound_mib']:.0f}",
                         f"{flower[2]:.0f}" if flower else "-", f"{f[f'{p}_up_mb']:.1f}/{f[f'{p}_down_mb']:.1f}",
                         f[f"{p}_requests"], f[f"{p}_mismatches"]))
            ok = ok and f[f"{p}_mismatches"] == 0
        print()
        print_table(["N", "D", "wall s (best)", "Flower wall s", "server CPU s/round, mean (of it Redis)",
                     "Flower CPU s", "CPU ratio", "peak RSS MiB (+Redis), memfd MiB", "idle / idle + 4 x model MiB",
                     "Flower RSS MiB", "MB up/down", "requests",
                     "model mismatches"], rows)
        print(f"--update_log {args.update_log}; wall: best of {args.rounds} rounds, CPU: their mean, per case on a "
              "shared machine (figures are noisy); "
              "Flower 1.41 legacy gRPC server figures from issue 13, same workload; ratio = mindfed server+Redis CPU / "
              "Flower server CPU")
    write_json(args.json, figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
