"""Durability overhead per accepted update: the write-ahead log, checkpoints, Redis memory, updateModel with/without.

Run: `python -m benchmarks.durability [--json PATH] [--repeats N] [--skip-server]`.

For LeNet-5 (62 classes, 3 channels: ~266 kB bodies) and a one-tensor model of 10M floats (40 MB bodies), over a
private redis-server (`EmbeddedRedis`), in one run, best of N:

1. Direct, in this process, with real updateModel bodies (`request_builders`), K updates per cycle (the updates
   between two checkpoints):
     log         the write-ahead log, which rides in the reservation's Lua call (`IterationCache.reserve_update`
                 with the raw body: EVALSHA ... HSET wal fl_id body): K reservations with their bodies minus K
                 with empty bodies (same script, same round trip), per update, and GB/s of body bytes
     plain_hset  for comparison, the same bodies as plain `HSET wal fl_id body` (the log before it moved into the
                 Lua call)
     encode      the checkpoint's blob as the server encodes it (`checkpointer.encode_live`: straight from the
                 live sums while no fold runs, into the buffer its checkpoint loop reuses)
     checkpoint  `DurableUpdates.checkpoint` (MULTI: SET the blob, replace the tag set, HDEL the K logged bodies)
     memory      Redis INFO used_memory above the empty baseline: after the K logged bodies, after the checkpoint
2. End to end (unless --skip-server): a running server (`mindfed.cli.server_process`, as benchmarks.ingest starts it)
   takes R updateModel POSTs per iteration, every reply SUCCEED, with 1 client (latency) and 4 clients
   (throughput), in four variants, each its own server process over the same Redis:
     as_is        durability as it is by default (`--update_log on`: log before fold, checkpointer every 1 s)
     replica      `--update_log replica`, with a second server of the job (same Redis, same cores) holding the
                  copies (server/replicas.py)
     no_log       `--update_log off` (checkpoints still run)
     no_durable   no log and no periodic checkpoints (`python -m benchmarks.cluster_fixture --without
                  log+checkpoints`)
   overhead = (as_is - no_log) / as_is of the per-update time (replica_overhead: the same with replica for as_is);
   `log_share` = direct log ms / as_is ms per update.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.cluster_fixture import REPO, make_state
from benchmarks.ingest import (
    Connection,
    admit,
    build_bodies,
    check_accepted,
    child,
    post_all,
    replica_holder,
    server_argv,
    write_yaml,
)
from benchmarks.probe import add_common_args, print_table, write_json
from mindfed.cache.durability import DurableUpdates
from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.cache.iteration import DeviceMeta, IterationCache
from mindfed.model.lenet import init_lenet5
from mindfed.model.weights import ModelWeights
from mindfed.protocol import request_builders as rq
from mindfed.server.checkpointer import encode_live
from mindfed.server.partials import Scratch

TIMESTAMP = "1700000000000"
# variant -> (--update_log, what cluster_fixture switches off, if anything)
VARIANTS: dict[str, tuple[str, str | None]] = {
    "as_is": ("on", None), "replica": ("replica", None), "no_log": ("off", None),
    "no_durable": ("off", "log+checkpoints")}
CLIENTS = (1, 4)


@dataclass(frozen=True)
class Case:
    """One model: `between` updates per checkpoint cycle (direct part), `requests` per iteration (server part)."""

    label: str
    weights: dict[str, np.ndarray]
    between: int
    requests: int


def cases() -> list[Case]:
    lenet = init_lenet5(62, 3)
    rng = np.random.default_rng(0)
    return [
        Case("lenet", {n: lenet.flat(n).astype(np.float32) for n in lenet.names}, 100, 128),
        Case("d10m", {"w": rng.standard_normal(10_000_000, dtype=np.float32)}, 8, 8),
    ]


# ---------------------------------------------------------------------------------------------- 1. direct


async def _used_memory(state: object) -> int:
    info = await state.store.redis.info("memory")  # type: ignore[attr-defined]
    return int(info["used_memory"])


async def _reserve_cycle(cache: IterationCache, node_id: str, fl_ids: list[str], bodies: list[bytes] | None,
                         threshold: int) -> float:
    """Seconds for reserve_update of every fl_id in a row, each with its body (or an empty one); all must reserve."""
    start = time.perf_counter()
    for i, fl_id in enumerate(fl_ids):
        code, _, _ = await cache.reserve_update(fl_id, node_id, threshold, 0, reserve=True,
                                                body=bodies[i] if bodies else None)
        assert code == 0, (fl_id, code)
    return time.perf_counter() - start


async def measure_direct(case: Case, redis_address: str, repeats: int) -> dict[str, float]:
    """Per cycle: K reservations with their logged bodies, K with empty bodies, then encode + checkpoint."""
    model = ModelWeights(case.weights)
    state = make_state(redis_address, f"dur_{case.label}_{os.getpid()}", "server-a", model, None)
    cache = state.cache()
    durable = DurableUpdates(state.store, state.instance, state.iteration, state.ttl)
    k = case.between
    fm = list(case.weights.items())
    bodies = [rq.build_request_update_model("bench", f"dev{i:06d}", 1, fm, TIMESTAMP) for i in range(k)]
    update = {n: np.ascontiguousarray(w) for n, w in case.weights.items()}
    body_bytes = sum(len(b) for b in bodies)
    threshold = (repeats + 1) * 2 * k + 1
    best = dict.fromkeys(("log", "empty", "hset", "encode", "checkpoint"), float("inf"))
    base = await _used_memory(state)
    logged_mem = checkpoint_mem = blob_bytes = 0
    scratch_buffer = Scratch()  # the warm-up cycle allocates it, as a server's first checkpoint does
    try:
        for rep in range(repeats + 1):
            logged = [f"r{rep}-log{i:06d}" for i in range(k)]
            empty = [f"r{rep}-empty{i:06d}" for i in range(k)]
            meta = DeviceMeta("", 1, 0).to_json()
            await state.store.redis.hset(cache.keys.device_metas, mapping=dict.fromkeys(logged + empty, meta))
            state.accumulator.reset()
            log_s = await _reserve_cycle(cache, state.node_id, logged, bodies, threshold)
            logged_mem = max(logged_mem, await _used_memory(state) - base)
            empty_s = await _reserve_cycle(cache, state.node_id, empty, None, threshold)
            scratch = cache.keys.wal("scratch")
            start = time.perf_counter()
            for fl_id, body in zip(logged, bodies, strict=True):  # the log as a plain HSET (before d7d80db)
                await state.store.binary.hset(scratch, fl_id, body)
            hset_s = time.perf_counter() - start
            await state.store.binary.delete(scratch)
            for fl_id in logged:  # not timed: the fold, as the server does it after the reservation
                await state.accumulator.add(update, 1, tag=fl_id)
            start = time.perf_counter()  # the server's own encode, into the buffer it reuses (server/checkpointer.py)
            blob, tags = await encode_live(state.accumulator, scratch_buffer.buffer)
            encode_s = time.perf_counter() - start
            scratch_buffer.fit(blob)
            start = time.perf_counter()
            await durable.checkpoint(state.node_id, blob, tags)
            checkpoint_s = time.perf_counter() - start
            blob_bytes = len(blob)
            checkpoint_mem = await _used_memory(state) - base
            del blob
            if rep:
                for key, s in (("log", log_s), ("empty", empty_s), ("hset", hset_s), ("encode", encode_s),
                               ("checkpoint", checkpoint_s)):
                    best[key] = min(best[key], s)
        await state.store.redis.delete(*cache.keys.all_keys(), *cache.keys.node_keys(state.node_id))
    finally:
        await state.store.close()
    p = case.label
    log_s = best["log"] - best["empty"]  # what the body adds to the reservation's round trip
    return {
        f"{p}_body_bytes": body_bytes // k, f"{p}_updates_between_checkpoints": k,
        f"{p}_reserve_with_log_ms": best["log"] / k * 1e3, f"{p}_reserve_empty_ms": best["empty"] / k * 1e3,
        f"{p}_log_ms_per_update": log_s / k * 1e3, f"{p}_log_gbps": body_bytes / log_s / 1e9 if log_s > 0 else 0.0,
        f"{p}_plain_hset_ms_per_update": best["hset"] / k * 1e3,
        f"{p}_plain_hset_gbps": body_bytes / best["hset"] / 1e9,
        f"{p}_encode_ms": best["encode"] * 1e3, f"{p}_checkpoint_ms": best["checkpoint"] * 1e3,
        f"{p}_encode_plus_checkpoint_ms": (best["encode"] + best["checkpoint"]) * 1e3,
        f"{p}_checkpoint_blob_bytes": blob_bytes,
        f"{p}_checkpoint_ms_per_update": (best["encode"] + best["checkpoint"]) / k * 1e3,
        f"{p}_redis_mb_logged": logged_mem / 1e6, f"{p}_redis_mb_after_checkpoint": checkpoint_mem / 1e6,
    }


# ---------------------------------------------------------------------------------------------- 2. server


def variant_argv(without: str | None, argv: list[str]) -> list[str]:
    if without is None:
        return argv
    return [sys.executable, "-m", "benchmarks.cluster_fixture", "--without", without, "--", *argv[3:]]


async def measure_server(case: Case, port: int, fl_name: str, repeats: int) -> dict[int, float]:
    """clients -> best seconds for `case.requests` accepted updateModel POSTs (one iteration per repeat)."""
    fl_ids = [f"dev{i:06d}" for i in range(case.requests)]
    best: dict[int, float] = {}
    conns = [await Connection.open(port) for _ in range(max(CLIENTS))]
    try:
        for clients in CLIENTS:
            for rep in range(repeats + 1):  # the first iteration warms up
                iteration = await admit(conns, fl_name, fl_ids)
                bodies = build_bodies(case, fl_name, fl_ids, iteration)  # type: ignore[arg-type]
                seconds, replies = await post_all(conns[:clients], "/updateModel", bodies)
                check_accepted(replies)
                del bodies, replies
                if rep:
                    best[clients] = min(best.get(clients, float("inf")), seconds)
    finally:
        for conn in conns:
            conn.close()
    return best


def run_variant(case: Case, variant: str, redis: EmbeddedRedis, work: Path, repeats: int) -> dict[int, float]:
    fl_name = f"dur_{case.label}_{variant}_{os.getpid()}"
    yaml_path, model_path = work / f"{case.label}_{variant}.yaml", work / f"{case.label}.npz"
    write_yaml(yaml_path, fl_name, redis.address, case.requests)
    if not model_path.exists():
        np.savez(model_path, **case.weights)  # type: ignore[arg-type]
    port = free_port()
    update_log, without = VARIANTS[variant]
    argv = variant_argv(without, server_argv(yaml_path, model_path, port, redis.address, work, update_log))
    with contextlib.ExitStack() as stack:
        stack.enter_context(child(argv, port, work / f"server_{case.label}_{variant}.log", REPO))
        if update_log == "replica":
            stack.enter_context(replica_holder(yaml_path, model_path, redis.address, work,
                                               work / f"holder_{case.label}.log"))
        return asyncio.run(measure_server(case, port, fl_name, repeats))


def server_figures(case: Case, timings: dict[str, dict[int, float]], direct: dict[str, float]) -> dict[str, float]:
    p, n = case.label, case.requests
    out: dict[str, float] = {}
    for variant, best in timings.items():
        out[f"{p}_{variant}_ms_per_update"] = best[1] / n * 1e3
        out[f"{p}_{variant}_rps_{CLIENTS[-1]}clients"] = n / best[CLIENTS[-1]]
    as_is, no_log = out[f"{p}_as_is_ms_per_update"], out[f"{p}_no_log_ms_per_update"]
    out[f"{p}_log_overhead_fraction"] = (as_is - no_log) / as_is
    out[f"{p}_durable_overhead_fraction"] = (as_is - out[f"{p}_no_durable_ms_per_update"]) / as_is
    out[f"{p}_log_share_of_update"] = direct[f"{p}_log_ms_per_update"] / as_is
    rps = f"rps_{CLIENTS[-1]}clients"
    out[f"{p}_log_throughput_cost_fraction"] = 1 - out[f"{p}_as_is_{rps}"] / out[f"{p}_no_log_{rps}"]
    replica = out[f"{p}_replica_ms_per_update"]
    out[f"{p}_replica_overhead_fraction"] = (replica - no_log) / replica
    out[f"{p}_replica_throughput_cost_fraction"] = 1 - out[f"{p}_replica_{rps}"] / out[f"{p}_no_log_{rps}"]
    return out


# ---------------------------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> None:
    """Parses arguments, runs the direct and the server parts, prints the tables and writes the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.durability", description=__doc__.splitlines()[0])
    add_common_args(parser, default_repeats=3)
    parser.add_argument("--skip-server", action="store_true", help="only the direct Redis measurements")
    args = parser.parse_args(argv)
    figures: dict[str, float | int | str] = {"repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="mindfed-durability-") as tmp, EmbeddedRedis() as redis:
        for case in cases():
            print(f"{case.label}: direct, {case.between} updates per checkpoint, best of {args.repeats} ...",
                  flush=True)
            direct = asyncio.run(measure_direct(case, redis.address, args.repeats))
            figures.update(direct)
            if args.skip_server:
                continue
            timings = {}
            for variant in VARIANTS:
                print(f"{case.label}: server {variant}, {case.requests} updates per iteration ...", flush=True)
                timings[variant] = run_variant(case, variant, redis, Path(tmp), args.repeats)
            figures.update(server_figures(case, timings, direct))
    _print(figures, args.skip_server)
    write_json(args.json, figures)


def _print(f: dict[str, float | int | str], skip_server: bool) -> None:
    labels = [c.label for c in cases()]
    print()
    keys = ["body_bytes", "updates_between_checkpoints", "reserve_with_log_ms", "reserve_empty_ms",
            "log_ms_per_update", "log_gbps", "plain_hset_ms_per_update", "plain_hset_gbps", "encode_ms",
            "checkpoint_ms", "checkpoint_ms_per_update", "redis_mb_logged", "redis_mb_after_checkpoint"]
    print_table(["figure", *labels], [[k, *(f[f"{p}_{k}"] for p in labels)] for k in keys])
    if skip_server:
        return
    print()
    keys = [*(f"{v}_ms_per_update" for v in VARIANTS), *(f"{v}_rps_{CLIENTS[-1]}clients" for v in VARIANTS),
            "log_overhead_fraction", "durable_overhead_fraction", "log_share_of_update",
            "log_throughput_cost_fraction", "replica_overhead_fraction", "replica_throughput_cost_fraction"]
    print_table(["updateModel (server)", *labels], [[k, *(f[f"{p}_{k}"] for p in labels)] for k in keys])
    print("ms_per_update: 1 client, sequential POSTs; rps: 4 concurrent clients; every reply SUCCEED")


if __name__ == "__main__":
    main()
