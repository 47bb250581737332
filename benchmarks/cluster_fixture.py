"""Cluster pieces for the combine and durability benchmarks: real ServerStates over a real Redis, peer processes.

Used by `benchmarks.combine` and `benchmarks.durability`; also runnable as a server launcher with parts of the
durability protocol switched off, for the "without" side of `benchmarks.durability`:

    python -m benchmarks.cluster_fixture --without log|log+checkpoints -- <mindfed.cli.server_process arguments>

That launcher empties the logged body (and, with `log+checkpoints`, replaces the periodic checkpointer by a no-op)
in its own process only, then runs `mindfed.cli.server_process.main` unchanged. The log rides in the reservation's
Lua call (`IterationCache.reserve_update(..., body)`); "without log" runs the server with `--update_log off`, which
sends an empty body to that same call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from mindfed.aggregation.accumulator import IterationAccumulator
from mindfed.cache import keys as K
from mindfed.cache.store import CacheStore, Ttl
from mindfed.config import FLConfig, load
from mindfed.model.weights import ModelWeights
from mindfed.net.endpoint import TcpEndpoint
from mindfed.server.checkpointer import checkpoint_once
from mindfed.server.model_store import ModelStore
from mindfed.server.peers import serve_peers
from mindfed.server.phase import IterationPhase
from mindfed.server.state import ServerState

REPO = Path(__file__).resolve().parents[1]
LENET_YAML = REPO / "yamls" / "lenet.yaml"
INSTANCE, ITERATION = "i_bench", 1
HEARTBEAT_S = 3600  # peers must stay "alive" for the whole run


def bench_config(redis_address: str, fl_name: str) -> FLConfig:
    """lenet.yaml pointed at `redis_address`, with no timer firing during a run."""
    return load(LENET_YAML, {
        "fl_name": fl_name, "distributed_cache.address": redis_address, "fl_iteration_num": 100_000,
        "round.start_fl_job_threshold": 1000, "round.start_fl_job_time_window": 600_000,
        "round.update_model_time_window": 600_000, "round.global_iteration_time_window": 3_600_000,
        "unsupervised.eval_type": "NOT_EVAL"})


def make_state(redis_address: str, fl_name: str, node_id: str, model: ModelWeights,
               peers: TcpEndpoint | None) -> ServerState:
    """A ServerState built the way `ServerNode.start` builds it (no HTTP, no driver), at INSTANCE/ITERATION."""
    cfg = bench_config(redis_address, fl_name)
    ttl = Ttl.from_window(cfg.round.global_iteration_time_window)
    models = ModelStore()
    models.reset(ITERATION - 1, model)
    accumulator = IterationAccumulator({n: model.sizes[n] for n in model.aggregated_names})
    tcp_address = f"127.0.0.1:{peers.port}" if peers is not None else ""
    state = ServerState(config=cfg, store=CacheStore.connect(redis_address, fl_name), ttl=ttl, node_id=node_id,
                        tcp_address=tcp_address, models=models, accumulator=accumulator, instance=INSTANCE,
                        iteration=ITERATION, peers=peers)
    state.phase.enter(IterationPhase.RUNNING, ITERATION)
    return state


async def fill(state: ServerState, value: float, updates: int, tag_prefix: str) -> list[str]:
    """Folds `updates` updates of constant `value` (data_size 1 each) into state's accumulator; their tags."""
    sizes = state.accumulator.sizes
    arrays = {name: np.full(size, value, np.float32) for name, size in sizes.items()}
    tags = [f"{tag_prefix}-dev{i}" for i in range(updates)]
    for tag in tags:
        await state.accumulator.add(arrays, 1, tag=tag)
    return tags


async def announce(state: ServerState, updates: int) -> None:
    """Registers state's node as alive and as a server with `updates` accepted updates this iteration."""
    await state.store.register_server(state.instance, state.node_id, state.tcp_address, HEARTBEAT_S)
    keys = state.store.job.instance(state.instance).iteration(state.iteration)
    await state.store.redis.hset(keys.per_server_counts(K.ROUND_UPDATE_MODEL), state.node_id, updates)


def peer_main(rank: int, redis_address: str, fl_name: str, sizes: dict[str, int], updates: int,
              pipe: Connection) -> None:
    """A peer server: filled accumulator, checkpoint in Redis, `serve_peers` on its TcpEndpoint until told to stop.

    It sends its node_id.
    """

    async def main() -> None:
        model = ModelWeights({n: np.zeros(s, np.float32) for n, s in sizes.items()})
        async with TcpEndpoint.open() as endpoint:
            state = make_state(redis_address, fl_name, f"peer{rank}", model, endpoint)
            await fill(state, float(rank + 1), updates, f"peer{rank}")
            if await checkpoint_once(state) is None:  # the server's own checkpoint, as run_checkpoints writes it
                raise RuntimeError("the peer's checkpoint was not written")
            await announce(state, updates)
            serve_peers(endpoint, state)
            pipe.send(state.node_id)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
            await state.store.close()

    asyncio.run(main())


def raw_sender_main(port: int, size: int, rounds: int) -> None:
    """Plain-socket sender: per round, waits for one request byte, then sendall()s `size` pre-touched bytes."""
    import socket  # noqa: PLC0415

    payload = np.ones(size, np.uint8)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(rounds):
            if sock.recv(1) != b"g":
                return
            sock.sendall(payload.data)


# ---------------------------------------------------------------------------------------------- server launcher


def _patched_server(without: str, server_argv: Sequence[str]) -> int:
    """The server with `--update_log off`; for "log+checkpoints" the periodic checkpoints are patched out too."""

    async def no_checkpoints(state: object, period_s: float = 1.0) -> None:
        return None

    if without == "log+checkpoints":
        import mindfed.server.node as node_module  # noqa: PLC0415

        node_module.run_checkpoints = no_checkpoints  # type: ignore[assignment]
    from mindfed.cli.server_process import main  # noqa: PLC0415

    return main([*server_argv, "--update_log", "off"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster_fixture")
    parser.add_argument("--without", choices=["log", "log+checkpoints"], required=True)
    parser.add_argument("server_argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    rest = args.server_argv[1:] if args.server_argv[:1] == ["--"] else args.server_argv
    sys.exit(_patched_server(args.without, rest))
