"""Combining partial sums across 4 servers (D = 10M floats) as the aggregator does, vs a raw loopback TCP copy.

Run: `python -m benchmarks.combine [--json PATH] [--repeats N]`.

Setup, all on loopback over a private redis-server (`EmbeddedRedis`): 3 peer processes, each a real `ServerState`
whose `IterationAccumulator` holds one folded update of D floats, answering GET_PARTIAL through `serve_peers` on its
own `TcpEndpoint`, registered alive, with its checkpoint written to Redis as `run_checkpoints` writes it. The
aggregator (this process) is a fourth `ServerState` with its own filled accumulator. Timed, best of N, in one run:

  raw_concurrent  3 sender processes -> this process, plain sockets: one request byte to each, then 3 x D*4 bytes
                  received concurrently (selectors) by `recv_into` a preallocated, touched buffer
  raw_sequential  the same, one sender after the other
  combine_tcp     `server.combine.combine(state, 1)` verbatim: `fetch_partial` per live peer, concurrently (the
                  peer lends its live sums and sends them in place: server/peers.py), the first received buffer
                  taken over as the totals, the others and the own sums added into it, then `Totals.model` (the
                  division in place, handed to a new ModelWeights); the result is checked
  combine_redis   the same call with `state.peers = None`: every peer read from Redis (`DurableUpdates.read` +
                  `PartialSums.decode` + add), the fallback for dead or silent peers
GB/s count the 3 peers' partial-sum bytes (3 x 40 MB), so combine/raw is the ratio of times (goal >= 0.7).
Then each step of the TCP path alone (same sizes, same processes), to say where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import selectors
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from benchmarks.cluster_fixture import (
    ITERATION,
    fill,
    make_state,
    peer_main,
    raw_sender_main,
)
from benchmarks.probe import TriadProbe, add_common_args, print_table, write_json
from mindfed import _core
from mindfed.cache.durability import DurableUpdates
from mindfed.cache.embedded import EmbeddedRedis
from mindfed.model.weights import ModelWeights
from mindfed.net.endpoint import TcpEndpoint
from mindfed.server.combine import Totals, combine
from mindfed.server.partials import PartialSums
from mindfed.server.peers import fetch_partial

D = 10_000_000
PEERS = 3
SIZES = {"w": D}
PEER_BYTES = PEERS * D * 4
WANT = sum(range(1, PEERS + 2)) / (PEERS + 1)  # server r holds one update of value r+1, data_size 1


# ---------------------------------------------------------------------------------------------- raw sockets


def raw_seconds(repeats: int, concurrent: bool) -> float:
    """Best seconds to receive PEERS x D*4 bytes from PEERS sender processes (one warm-up round first)."""
    size = D * 4
    buf = np.ones(PEERS * size, np.uint8)
    views = [buf.data[i * size:(i + 1) * size] for i in range(PEERS)]
    ctx = mp.get_context("spawn")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        procs = [ctx.Process(target=raw_sender_main, args=(port, size, repeats + 1)) for _ in range(PEERS)]
        for p in procs:
            p.start()
        conns = [server.accept()[0] for _ in range(PEERS)]
    best = float("inf")
    try:
        for c in conns:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for rep in range(repeats + 1):
            start = time.perf_counter()
            if concurrent:
                _receive_concurrent(conns, views)
            else:
                for c, view in zip(conns, views, strict=True):
                    c.sendall(b"g")
                    _receive_all(c, view)
            if rep:
                best = min(best, time.perf_counter() - start)
    finally:
        for c in conns:
            c.close()
        for p in procs:
            p.join(30)
    return best


def _receive_all(conn: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = conn.recv_into(view[got:])
        if n == 0:
            raise ConnectionError("sender closed early")
        got += n


def _receive_concurrent(conns: list[socket.socket], views: list[memoryview]) -> None:
    got = dict.fromkeys(range(len(conns)), 0)
    with selectors.DefaultSelector() as sel:
        for i, c in enumerate(conns):
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ, i)
            c.sendall(b"g")
        deadline = time.monotonic() + 60
        while got and time.monotonic() < deadline:
            for key, _ in sel.select(1.0):
                i = key.data
                n = conns[i].recv_into(views[i][got[i]:])
                if n == 0:
                    raise ConnectionError("sender closed early")
                got[i] += n
                if got[i] == len(views[i]):
                    sel.unregister(conns[i])
                    del got[i]
    for c in conns:
        c.setblocking(True)
    if got:
        raise TimeoutError("raw receive did not finish in 60 s")


# ---------------------------------------------------------------------------------------------- the cluster


async def best_async(run: Callable[[], Awaitable[object]], repeats: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        await run()
        best = min(best, time.perf_counter() - start)
    return best


async def measure_cluster(redis_address: str, repeats: int) -> dict[str, float]:
    fl_name = "bench_combine"
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for rank in range(PEERS):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=peer_main, args=(rank, redis_address, fl_name, SIZES, 1, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        loop = asyncio.get_running_loop()
        answers = [await loop.run_in_executor(None, p.recv) for p in pipes]
        return await _measure_aggregator(redis_address, fl_name, answers, repeats)
    finally:
        for p in pipes:
            p.send("stop")
        for proc in procs:
            proc.join(30)


def check(result: ModelWeights | None, count: int) -> None:
    """The combined model must be the exact average of the 4 servers' updates."""
    if result is None or count != PEERS + 1:
        raise RuntimeError(f"combine gave {result!r} from {count} updates, want {PEERS + 1}")
    w = result["w"]
    if abs(float(w[0]) - WANT) > 1e-6 or abs(float(w[-1]) - WANT) > 1e-6:
        raise RuntimeError(f"combined value {w[0]} / {w[-1]}, want {WANT}")


async def _measure_aggregator(redis_address: str, fl_name: str, peer_ids: list[str], repeats: int) -> dict[str, float]:
    model = ModelWeights({n: np.zeros(s, np.float32) for n, s in SIZES.items()})
    async with TcpEndpoint.open() as endpoint:
        state = make_state(redis_address, fl_name, "aggregator", model, endpoint)
        await fill(state, float(PEERS + 1), 1, "aggregator")

        async def checked(run_peers: TcpEndpoint | None) -> None:
            state.peers = run_peers
            result, count = await combine(state, ITERATION)
            check(result, count)

        figures: dict[str, float] = {}
        for case, peers in (("combine_tcp", endpoint), ("combine_redis", None)):
            await checked(peers)  # warm-up: connections, page faults of the first buffers
            figures[f"{case}_s"] = await best_async(lambda p=peers: checked(p), repeats)  # type: ignore[misc]
        figures.update(await _steps(state, endpoint, peer_ids, repeats))
        await state.store.close()
    return figures


async def _steps(state: Any, endpoint: TcpEndpoint, peer_ids: list[str], repeats: int) -> dict[str, float]:
    """Each step of the combine alone, in seconds for ONE 40 MB partial."""
    alive = await state.store.alive_servers(state.instance)
    address = alive[peer_ids[0]]
    durable = DurableUpdates(state.store, state.instance, ITERATION, state.ttl)
    sums, data_sizes, tags = await state.accumulator.checkpoint()
    partial = PartialSums(sums, data_sizes, tags)
    blob = partial.encode()
    totals = Totals(PartialSums({n: np.zeros(v.size, np.float32) for n, v in sums.items()},
                                dict.fromkeys(sums, 0), []))
    frame_box: list[Any] = []

    async def fetch() -> None:
        got = await fetch_partial(endpoint, address, state.instance, ITERATION)
        assert got is not None
        frame_box[:] = [got]

    async def read_redis() -> None:
        frame_box[:] = [await durable.read(peer_ids[0])]

    def add() -> None:
        totals.tags.clear()
        totals.add_partial(partial)

    def model() -> None:
        totals.data_sizes["w"] = 1
        assert totals.model(state.models.latest) is not None

    def sync(run: Callable[[], object]) -> Callable[[], Awaitable[object]]:
        async def wrapped() -> object:
            return run()
        return wrapped

    raw_copy = np.empty(D, np.float32)
    steps: dict[str, Callable[[], Awaitable[object]]] = {
        "accumulator_checkpoint": state.accumulator.checkpoint,  # 40 MB copy under the fold lock (a checkpoint)
        "encode": sync(partial.encode),  # one copy into a fresh buffer (a checkpoint's blob for Redis)
        "fetch_partial": fetch,  # head + one tensor request -> the peer's live sums sent in place, one peer
        "decode": sync(lambda: PartialSums.decode(memoryview(blob))),
        "add_partial": sync(add),  # _core.agg.accumulate, 40 MB
        "totals_model": sync(model),  # total / n in place + ModelWeights.replace_owned (isfinite)
        "redis_read": read_redis,  # MULTI GET + HGETALL of one 40 MB checkpoint
        "numpy_copy_40mb": sync(lambda: np.copyto(raw_copy, sums["w"])),  # reference: one memcpy
        "cpp_scale_into_40mb": sync(lambda: _core.agg.scale_into(sums["w"], 0.5, raw_copy)),  # reference
    }
    out: dict[str, float] = {}
    for name, run in steps.items():
        await run()
        out[f"step_{name}_ms"] = await best_async(run, repeats) * 1e3
    return out


# ---------------------------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> None:
    """Runs the raw copies and the cluster cases, prints the tables and writes the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.combine", description=__doc__.splitlines()[0])
    add_common_args(parser, default_repeats=10)
    args = parser.parse_args(argv)
    gb = PEER_BYTES / 1e9
    print(f"{PEERS + 1} servers, D={D:,} floats, {PEERS} x {D * 4 / 1e6:.0f} MB of peer partial sums, "
          f"best of {args.repeats} ...", flush=True)
    triad = TriadProbe().gbps(args.repeats)
    raw_conc = raw_seconds(args.repeats, concurrent=True)
    raw_seq = raw_seconds(args.repeats, concurrent=False)
    with EmbeddedRedis() as redis:
        cluster = asyncio.run(measure_cluster(redis.address, args.repeats))
    raw_best = min(raw_conc, raw_seq)
    figures: dict[str, float | int | str] = {
        "repeats": args.repeats, "d_floats": D, "peers": PEERS, "peer_bytes": PEER_BYTES, "triad_gbps": triad,
        "raw_concurrent_ms": raw_conc * 1e3, "raw_concurrent_gbps": gb / raw_conc,
        "raw_sequential_ms": raw_seq * 1e3, "raw_sequential_gbps": gb / raw_seq,
    }
    rows = [["raw_concurrent", raw_conc * 1e3, gb / raw_conc, raw_best / raw_conc],
            ["raw_sequential", raw_seq * 1e3, gb / raw_seq, raw_best / raw_seq]]
    for case in ("combine_tcp", "combine_redis"):
        s = cluster[f"{case}_s"]
        figures |= {f"{case}_ms": s * 1e3, f"{case}_gbps": gb / s, f"{case}_ratio": raw_best / s}
        rows.append([case, s * 1e3, gb / s, raw_best / s])
    figures["ratio"] = figures["combine_tcp_ratio"]
    print()
    print_table(["case", "ms", "GB/s of peer partials", "x best raw"], rows)
    print(f"combine_tcp / raw = {figures['ratio']:.2f} (goal >= 0.7); triad probe {triad:.1f} GB/s")
    print()
    step_rows = []
    for key, ms in cluster.items():
        if key.startswith("step_"):
            figures[key] = ms
            step_rows.append([key[5:-3], ms, D * 4 / 1e9 / (ms / 1e3) if ms > 0 else 0.0])
    print_table(["step (one 40 MB partial)", "ms", "GB/s"], step_rows)
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
