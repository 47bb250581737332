"""Node-to-node transport throughput: TcpEndpoint vs a raw loopback socket copy; star reduce vs ring.

Run: `python -m benchmarks.transport [--json PATH] [--repeats N] [--skip-reduce]`.

1. One-way transfer between two processes of D = 10M float32 (40 MB) and of 1 GiB:
     raw   plain sockets: sender `sendall(buf)`, receiver `recv_into` a preallocated, already
           touched buffer, then a 1-byte ack;
     node  `TcpEndpoint.request(addr, type, array)` to a peer whose handler answers b"k" (the
           payload is received in place into a fresh buffer per frame, as the server would).
   Both measured in this run, best of N, timed at the sender from first byte to ack; the ratio
   node / raw is the figure that matters (goal >= 0.7).
2. A 4-process reduce of 10M-float partial sums, everyone ending with the total:
     star  each node sends its partial to node 0, which adds them with _core.agg.accumulate and
           sends the sum back to each;
     ring  ring all-reduce: reduce-scatter then all-gather in 4 chunks, 6 steps.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from benchmarks.probe import add_common_args, print_table, write_json
from mindfed import _core
from mindfed.net import Frame, TcpEndpoint

DATA, STOP, PARTIAL, RESULT, SCATTER, GATHER = 1, 2, 10, 11, 12, 13
SIZES = [("d10m_40MB", 10_000_000 * 4), ("1GiB", 1 << 30)]
REDUCE_NODES, REDUCE_FLOATS = 4, 10_000_000
TIMEOUT_S = 120.0


# ---- raw sockets ------------------------------------------------------------------------------
def _raw_receiver(pipe: Connection, size: int, repeats: int) -> None:
    buf = np.ones(size, np.uint8)  # touched once, as a preallocated buffer would be
    view = buf.data
    with socket.create_server(("127.0.0.1", 0)) as server:
        pipe.send(server.getsockname()[1])
        conn, _ = server.accept()
        with conn:
            for _ in range(repeats):
                got = 0
                while got < size:
                    n = conn.recv_into(view[got:], size - got)
                    if n == 0:
                        return
                    got += n
                conn.sendall(b"k")


def raw_seconds(size: int, repeats: int) -> float:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_raw_receiver, args=(child, size, repeats))
    proc.start()
    port = parent.recv()
    payload = np.ones(size, np.uint8)
    best = float("inf")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(repeats):
            start = time.perf_counter()
            sock.sendall(payload.data)
            assert sock.recv(1) == b"k"
            best = min(best, time.perf_counter() - start)
    proc.join(30)
    return best


# ---- TcpEndpoint --------------------------------------------------------------------------------
def _node_receiver(pipe: Connection, tls: Callable[[], _core.net.TlsOptions | None] | None = None) -> None:
    """A node that answers every frame with b"k" until a STOP frame; `tls` (picklable: the child is spawned)
    builds its TLS options in the child (benchmarks/tls_node.py)."""

    async def main() -> None:
        endpoint = TcpEndpoint.open(tls=tls() if tls is not None else None)
        stop = asyncio.Event()

        async def handle(frame: Frame) -> bytes:
            if frame.type == STOP:
                stop.set()
            return b"k"

        endpoint.on_request(handle)
        pipe.send(endpoint.port)
        await stop.wait()
        await asyncio.sleep(0.05)  # let the STOP answer go out
        await endpoint.aclose()

    asyncio.run(main())


def node_seconds(size: int, repeats: int) -> tuple[float, float]:
    """(best, first) seconds; the first transfer receives into fresh memory, later ones into a recycled buffer."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_node_receiver, args=(child,))
    proc.start()
    address = f"127.0.0.1:{parent.recv()}"
    payload = np.ones(size, np.uint8)

    async def main() -> tuple[float, float]:
        times = []
        async with TcpEndpoint.open() as endpoint:
            for _ in range(repeats):
                start = time.perf_counter()
                ack = await endpoint.request(address, DATA, payload, TIMEOUT_S)
                times.append(time.perf_counter() - start)
                assert ack.payload.tobytes() == b"k"
            await endpoint.request(address, STOP, b"", TIMEOUT_S)
        return min(times), times[0]

    best = asyncio.run(main())
    proc.join(30)
    return best


# ---- 4-node reduce ----------------------------------------------------------------------------
def _floats(frame: Frame) -> np.ndarray:
    return frame.payload.view(np.float32)


async def _star(endpoint: TcpEndpoint, rank: int, peers: list[str], partial: np.ndarray) -> float:
    if rank == 0:
        acc = partial.copy()
        for _ in range(len(peers) - 1):
            _core.agg.accumulate(acc, _floats(await endpoint.inbox.get()), 1.0)
        for peer in peers[1:]:
            endpoint.send(peer, RESULT, acc)
        return float(acc.sum(dtype=np.float64))
    endpoint.send(peers[0], PARTIAL, partial)
    return float(_floats(await endpoint.inbox.get()).sum(dtype=np.float64))


async def _ring(endpoint: TcpEndpoint, rank: int, peers: list[str], partial: np.ndarray) -> float:
    n = len(peers)
    nxt = peers[(rank + 1) % n]
    acc = partial.copy()
    chunks = np.array_split(acc, n)  # views into acc
    for step in range(n - 1):  # reduce-scatter: chunk (rank - step) goes right, (rank - step - 1) comes in
        endpoint.send(nxt, SCATTER, chunks[(rank - step) % n])
        _core.agg.accumulate(chunks[(rank - step - 1) % n], _floats(await endpoint.inbox.get()), 1.0)
    # now chunk (rank + 1) % n is complete here; all-gather passes complete chunks around
    result: list[np.ndarray] = [np.empty(0, np.float32)] * n
    result[(rank + 1) % n] = chunks[(rank + 1) % n]
    for step in range(n - 1):
        endpoint.send(nxt, GATHER, result[(rank + 1 - step) % n])
        result[(rank - step) % n] = _floats(await endpoint.inbox.get())  # kept as received, no copy
    return float(sum(r.sum(dtype=np.float64) for r in result))


def _reduce_worker(rank: int, pipe: Connection) -> None:
    async def main() -> None:
        partial = np.full(REDUCE_FLOATS, float(rank + 1), np.float32)
        async with TcpEndpoint.open() as endpoint:
            pipe.send(endpoint.port)
            peers = pipe.recv()
            while (algo := pipe.recv()) != "stop":
                run = _star if algo == "star" else _ring
                total = await asyncio.wait_for(run(endpoint, rank, peers, partial), TIMEOUT_S)
                pipe.send(total)
            await asyncio.sleep(0.05)

    asyncio.run(main())


def reduce_seconds(repeats: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for rank in range(REDUCE_NODES):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_reduce_worker, args=(rank, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    peers = [f"127.0.0.1:{p.recv()}" for p in pipes]
    for p in pipes:
        p.send(peers)
    want = REDUCE_FLOATS * sum(range(1, REDUCE_NODES + 1))
    best: dict[str, float] = {}
    for algo in ["star", "ring"] * repeats:
        start = time.perf_counter()
        for p in pipes:
            p.send(algo)
        totals = [p.recv() for p in pipes]
        seconds = time.perf_counter() - start
        assert all(abs(t - want) < 1e-6 * want for t in totals), (algo, totals, want)
        best[algo] = min(best.get(algo, float("inf")), seconds)
    for p in pipes:
        p.send("stop")
    for proc in procs:
        proc.join(30)
    return best


def main(argv: list[str] | None = None) -> None:
    """Runs the transfer cases (and the reduce unless --skip-reduce) and prints a table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transport", description=__doc__.splitlines()[0])
    add_common_args(parser, default_repeats=5)
    parser.add_argument("--skip-reduce", action="store_true", help="only the two-node transfers")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    rows = []
    for label, size in SIZES:
        repeats = args.repeats if size < (1 << 30) else max(1, min(args.repeats, 3))
        raw = size / raw_seconds(size, repeats) / 1e9
        best, first = node_seconds(size, repeats)
        node, cold = size / best / 1e9, size / first / 1e9
        figures |= {
            f"{label}_raw_gbps": raw,
            f"{label}_node_gbps": node,
            f"{label}_node_first_gbps": cold,
            f"{label}_ratio": node / raw,
            f"{label}_first_ratio": cold / raw,
        }
        rows.append([label, raw, node, node / raw, cold, cold / raw])
    print_table(["payload", "raw socket GB/s", "TcpEndpoint GB/s", "ratio", "first transfer GB/s", "first ratio"], rows)
    print("first transfer: the receiver's payload buffer is fresh memory (page faults); later ones reuse it")
    if not args.skip_reduce:
        reduce_best = reduce_seconds(args.repeats)
        mb = REDUCE_FLOATS * 4 / 1e6
        print()
        print_table(
            ["4-node all-reduce", "best ms", f"GB/s of partials ({REDUCE_NODES} x {mb:.0f} MB)"],
            [[algo, s * 1e3, REDUCE_NODES * mb / 1e3 / s] for algo, s in reduce_best.items()],
        )
        faster = min(reduce_best, key=reduce_best.__getitem__)
        print(f"faster on this machine: {faster}")
        figures |= {
            "reduce_star_ms": reduce_best["star"] * 1e3,
            "reduce_ring_ms": reduce_best["ring"] * 1e3,
            "reduce_faster": faster,
        }
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
