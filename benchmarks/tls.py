"""TLS cost: updateModel throughput over HTTPS against plain HTTP, same server code, same bodies, same client, one run.

Run: `python -m benchmarks.tls [--json PATH] [--repeats N] [--clients C] [--only CASE]`.

Two mindfed servers (`mindfed.cli.server_process`, each its own process, over one private redis-server): one plain,
one with `enable_ssl: true` and a throwaway CA's certificate (ECDSA P-256, the default cipher list, so TLS 1.3 with
AES-256-GCM is negotiated). For a LeNet-5 (66,404 floats, ~266 kB bodies) and a 1M-float model (~4 MB bodies), every
repeat is one iteration on each server in turn: K devices call startFLJob (not timed), their updateModel bodies are
built (not timed), then C keep-alive connections POST them (timed; handshakes happen before, as a device's pooled
connection has them) and every reply must be SUCCEED, i.e. every timed request is a real fold. Figures are best of N:
requests/s and MB/s (10^6) of bodies, the ratio TLS/plain (goal: >= 0.7), and the server process's CPU ms per MB
(client and servers share this machine's cores, so the wall-clock ratio also pays the client's encryption).
The node-to-node transport's figure (a 10M-float partial sum with and without mutual TLS) comes from
benchmarks/tls_node.py in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from benchmarks.http_sink import content_length
from benchmarks.ingest import (
    Case,
    admit,
    build_bodies,
    check_accepted,
    child,
    post_all,
    server_argv,
    write_yaml,
)
from benchmarks.probe import add_common_args, child_pythonpath, print_table, write_json
from benchmarks.tls_node import NODE_HEADERS, node_transport_figures
from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.model.lenet import init_lenet5
from mindfed.tls.client import client_context
from mindfed.tls.dev_certs import DevCertSet, write_dev_certs
from mindfed.tls.passwords import CLIENT_PASSWORD_ENV, SERVER_PASSWORD_ENV

GOAL_RATIO = 0.7


def cases() -> list[Case]:
    lenet = init_lenet5(62, 3)
    rng = np.random.default_rng(0)
    return [
        Case("lenet", {n: lenet.flat(n).astype(np.float32) for n in lenet.names}, 128),
        Case("d1m", {"w": rng.standard_normal(1_000_000, dtype=np.float32)}, 32),
    ]


class StreamConnection:
    """One keep-alive HTTP/1.1 connection over asyncio streams, with or without TLS (the same code for both)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self._reader, self._writer, self._host = reader, writer, host

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext | None) -> StreamConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, limit=1 << 20)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, f"127.0.0.1:{port}")

    def close(self) -> None:
        self._writer.close()

    async def post(self, path: str, body: bytes) -> bytes:
        """POST `body` to `path`; the reply body (HTTP 200 required)."""
        head = (f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self._writer.write(head)
        self._writer.write(body)
        await self._writer.drain()
        reply_head = await self._reader.readuntil(b"\r\n\r\n")
        length = content_length(reply_head[:-4])
        if length is None:
            raise RuntimeError(f"{path}: reply without Content-Length: {reply_head[:200]!r}")
        reply = await self._reader.readexactly(length)
        if int(reply_head[9:12]) != 200:  # noqa: PLR2004
            raise RuntimeError(f"{path}: HTTP {reply_head[9:12]!r}: {reply[:200]!r}")
        return reply


@dataclass
class Timings:
    plain_s: list[float]
    tls_s: list[float]
    plain_cpu_s: list[float]
    tls_cpu_s: list[float]
    body_bytes: int = 0
    negotiated: str = ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_iteration(conns: Sequence[StreamConnection], case: Case, fl_name: str,
                        pid: int) -> tuple[float, float, int]:
    """(wall s of the timed POSTs, the server's CPU s meanwhile, body bytes)."""
    fl_ids = [f"dev{i:06d}" for i in range(case.requests)]
    iteration = await admit(conns, fl_name, fl_ids)  # type: ignore[arg-type]
    bodies = build_bodies(case, fl_name, fl_ids, iteration)
    cpu = cpu_seconds(pid)
    seconds, replies = await post_all(conns, "/updateModel", bodies)  # type: ignore[arg-type]
    cpu = cpu_seconds(pid) - cpu
    check_accepted(replies)
    return seconds, cpu, sum(len(b) for b in bodies)


async def measure_case(case: Case, ports: dict[str, int], names: dict[str, str], pids: dict[str, int],
                       context: ssl.SSLContext, clients: int, repeats: int) -> Timings:
    plain = [await StreamConnection.open(ports["plain"], None) for _ in range(clients)]
    tls = [await StreamConnection.open(ports["tls"], context) for _ in range(clients)]
    ssl_object = tls[0]._writer.get_extra_info("ssl_object")  # noqa: SLF001
    timings = Timings([], [], [], [], negotiated=f"{ssl_object.version()} {ssl_object.cipher()[0]}")
    try:
        for rep in range(repeats + 1):  # the first iteration of each warms connections, pages and code paths
            plain_s, plain_cpu, timings.body_bytes = await one_iteration(plain, case, names["plain"], pids["plain"])
            tls_s, tls_cpu, _ = await one_iteration(tls, case, names["tls"], pids["tls"])
            if rep:
                timings.plain_s.append(plain_s)
                timings.tls_s.append(tls_s)
                timings.plain_cpu_s.append(plain_cpu)
                timings.tls_cpu_s.append(tls_cpu)
    finally:
        for conn in plain + tls:
            conn.close()
    return timings


def write_tls_yaml(path: Path, certs: DevCertSet) -> None:
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["enable_ssl"] = True
    cfg["ssl"].update(server_cert_path=str(certs.server_cert_path), client_cert_path=str(certs.client_cert_path),
                      ca_cert_path=str(certs.ca_cert_path))
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")


def run_case(case: Case, redis: EmbeddedRedis, work: Path, certs: DevCertSet, clients: int,
             repeats: int) -> Timings:
    model_path = work / f"{case.label}.npz"
    np.savez(model_path, **case.weights)  # type: ignore[arg-type]
    ports = {"plain": free_port(), "tls": free_port()}
    names = {kind: f"tls_bench_{case.label}_{kind}_{os.getpid()}" for kind in ports}
    argv = {}
    for kind, port in ports.items():
        yaml_path = work / f"{case.label}_{kind}.yaml"
        cache_address = redis.address_for(enable_ssl=kind == "tls")  # the embedded Redis is plain either way
        write_yaml(yaml_path, names[kind], cache_address, case.requests)
        if kind == "tls":
            write_tls_yaml(yaml_path, certs)
        argv[kind] = server_argv(yaml_path, model_path, port, cache_address, work, update_log=True)
    with (child(argv["plain"], ports["plain"], work / f"plain_{case.label}.log", work) as plain_proc,
          child(argv["tls"], ports["tls"], work / f"tls_{case.label}.log", work) as tls_proc):
        pids = {"plain": plain_proc.pid, "tls": tls_proc.pid}
        return asyncio.run(measure_case(case, ports, names, pids, client_context(certs.ca_cert_path), clients,
                                        repeats))


def figures_of(case: Case, t: Timings, clients: int) -> dict[str, float | int | str]:
    n, mb = case.requests, t.body_bytes / 1e6
    plain_s, tls_s = min(t.plain_s), min(t.tls_s)
    p = case.label
    return {
        f"{p}_floats": case.floats, f"{p}_clients": clients, f"{p}_requests": n, f"{p}_body_bytes": t.body_bytes // n,
        f"{p}_plain_rps": n / plain_s, f"{p}_plain_mbps": mb / plain_s,
        f"{p}_https_rps": n / tls_s, f"{p}_https_mbps": mb / tls_s,
        f"{p}_https_over_plain": plain_s / tls_s,
        f"{p}_https_over_plain_median": float(np.median(t.plain_s)) / float(np.median(t.tls_s)),
        # the server process's own CPU per MB of bodies (best of N): what TLS costs the server, whatever the client
        f"{p}_plain_server_cpu_ms_per_mb": 1e3 * min(t.plain_cpu_s) / mb,
        f"{p}_https_server_cpu_ms_per_mb": 1e3 * min(t.tls_cpu_s) / mb,
        f"{p}_negotiated": t.negotiated,
    }


def main(argv: list[str] | None = None) -> None:
    """Parses arguments, measures every case, prints the table and writes the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tls", description=__doc__.splitlines()[0])
    add_common_args(parser, default_repeats=5)
    parser.add_argument("--clients", type=int, default=4,
                        help="concurrent keep-alive connections (default %(default)s)")
    parser.add_argument("--only", choices=[c.label for c in cases()], default=None, help="run one case")
    args = parser.parse_args(argv)
    figures: dict[str, float | int | str] = {"repeats": args.repeats, "clients": args.clients}
    rows = []
    with tempfile.TemporaryDirectory(prefix="mindfed-tls-bench-") as tmp, EmbeddedRedis() as redis:
        certs = write_dev_certs(Path(tmp) / "certs")
        # the server processes read the p12 passwords from their environment, as in production
        os.environ[SERVER_PASSWORD_ENV], os.environ[CLIENT_PASSWORD_ENV] = certs.server_password, certs.client_password
        os.environ["PYTHONPATH"] = child_pythonpath()  # the server processes import this mindfed
        for case in cases():
            if args.only and case.label != args.only:
                continue
            print(f"{case.label}: {case.floats:,} floats, {case.requests} updates per iteration, {args.clients} "
                  f"connections, best of {args.repeats} ...", flush=True)
            f = figures_of(case, run_case(case, redis, Path(tmp), certs, args.clients, args.repeats), args.clients)
            figures.update(f)
            p = case.label
            rows.append((p, case.requests, f[f"{p}_plain_rps"], f[f"{p}_plain_mbps"], f[f"{p}_https_rps"],
                         f[f"{p}_https_mbps"], f[f"{p}_https_over_plain"], f[f"{p}_plain_server_cpu_ms_per_mb"],
                         f[f"{p}_https_server_cpu_ms_per_mb"], f[f"{p}_negotiated"]))
    print("node transport: a 10M-float partial sum, plain TCP vs mutual TLS ...", flush=True)
    node_rows, node = node_transport_figures(args.repeats)
    figures.update(node)
    print()
    print_table(["case", "requests", "http req/s", "http MB/s", "https req/s", "https MB/s", "https/http",
                 "srv cpu ms/MB http", "srv cpu ms/MB https", "negotiated"], rows)
    for p, *_ in rows:
        ratio = float(figures[f"{p}_https_over_plain"])
        print(f"{p}: HTTPS at {ratio:.2f} of plain HTTP (median {float(figures[f'{p}_https_over_plain_median']):.2f}); "
              f"goal >= {GOAL_RATIO}: {'met' if ratio >= GOAL_RATIO else 'NOT met'}")
    print()
    print_table(NODE_HEADERS, node_rows)
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
