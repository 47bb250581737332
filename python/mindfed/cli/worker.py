"""`mindfed worker`: hybrid workers (HYBRID_TRAINING) with the flags of MindSpore's `run_hybrid_train_worker.py`
(spec §1.4), or cross-silo workers (CLOUD_TRAINING, cli/worker_cross_silo.py), as the YAML's server_mode says.

`--local_worker_num 1` (the default) trains in this process; more start that many worker processes, each logging to
`LOG_DIR/worker_{i}/worker.log`, and wait for them (Ctrl-C stops them all, by PID).
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from mindfed.cli.exit_codes import INTERRUPTED, OK, WORKER_CHILD_FAILED, WORKER_FAILED
from mindfed.config import load
from mindfed.config.enums import ServerMode
from mindfed.errors import ConfigError, NetworkError
from mindfed.runtime.logs import add_log_format_argument

logger = logging.getLogger(__name__)
STAGGER_S = 0.3  # MindSpore's launcher starts workers 0.3 s apart


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yaml_config", required=True, help="the job's YAML (server_mode picks the kind of worker)")
    # --- MindSpore's hybrid worker flags
    parser.add_argument("--device_target", choices=("CPU", "GPU"), default="CPU", help="where torch trains")
    parser.add_argument("--fl_iteration_num", type=int, default=0,
                        help="stop after this many iterations (default 0: when the job finishes)")
    parser.add_argument("--client_batch_size", type=positive, default=32, help="mini-batch size")
    parser.add_argument("--client_learning_rate", type=float, default=0.01, help="SGD learning rate (momentum 0.9)")
    parser.add_argument("--dataset_path", default="",
                        help="the worker's own data: an .npz with x (N,1,32,32 float32) and y (int64); default: the "
                        "training split of the offline digits")
    parser.add_argument("--sync_type", choices=("fixed", "adaptive"), default="fixed",
                        help="fixed windows, or MindSpore's adaptive sync frequency")
    parser.add_argument("--local_worker_num", type=positive, default=1, help="worker processes to start")
    # --- the cross-silo worker's (CLOUD_TRAINING, cli/worker_cross_silo.py)
    parser.add_argument("--http_server_address", default="", help="CLOUD_TRAINING: the server to talk to, ip:port")
    parser.add_argument("--data_size", type=int, default=1, help="CLOUD_TRAINING: data size at startFLJob (1..65535)")
    # --- ours
    parser.add_argument("--sync_frequency", type=int, default=0,
                        help="training steps per iteration (default 0: one epoch of the worker's data)")
    parser.add_argument("--num_class", type=int, default=0, help="classes of LeNet5 (default: from the labels)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial model and of the shuffling")
    parser.add_argument("--cache_address", default="", help="Redis ip:port overriding distributed_cache.address")
    parser.add_argument("--heartbeat_ttl_s", type=positive, default=10,
                        help="a worker silent this long drops out of the scheduler's /state (MindSpore: 10 s)")
    parser.add_argument("--log_dir", default="logs", help="with --local_worker_num > 1: LOG_DIR/worker_{i}/worker.log")
    add_log_format_argument(parser)


def run(args: argparse.Namespace) -> int:
    mode = load(args.yaml_config, {"distributed_cache.address": args.cache_address} if args.cache_address
                else None).server_mode
    if mode == ServerMode.CLOUD_TRAINING:
        from mindfed.cli import worker_cross_silo  # noqa: PLC0415 - torch

        return worker_cross_silo.run(args)
    if mode != ServerMode.HYBRID_TRAINING:
        raise ConfigError(f"{args.yaml_config}: server_mode {mode} has no workers (HYBRID_TRAINING or CLOUD_TRAINING)")
    if args.local_worker_num == 1:
        from mindfed.cli.worker_train import run_worker  # noqa: PLC0415 - torch
        from mindfed.worker.hybrid import WorkerRequestError  # noqa: PLC0415

        try:
            return run_worker(args)
        except (NetworkError, WorkerRequestError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return WORKER_FAILED
    return launch(args)


def child_argv(args: argparse.Namespace, index: int) -> list[str]:
    argv = [sys.executable, "-m", "mindfed.cli.main", "worker", "--local_worker_num", "1"]
    for name, value in sorted(vars(args).items()):
        if name in ("command", "local_worker_num", "log_dir", "log_format") or value in ("", None):
            continue
        argv += [f"--{name}", str(value + index if name == "seed" else value)]
    return argv


def launch(args: argparse.Namespace) -> int:
    """Start `--local_worker_num` worker processes and wait for them."""
    procs: list[subprocess.Popen[bytes]] = []
    stop = {"signal": 0}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: stop.__setitem__("signal", s))
    try:
        for i in range(args.local_worker_num):
            log_dir = Path(args.log_dir) / f"worker_{i}"
            log_dir.mkdir(parents=True, exist_ok=True)
            with (log_dir / "worker.log").open("ab") as log:
                procs.append(subprocess.Popen(child_argv(args, i), stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL))
            print(f"worker {i}: pid {procs[-1].pid}, log {log_dir / 'worker.log'}", flush=True)
            time.sleep(STAGGER_S)
        while not stop["signal"]:
            codes = [p.poll() for p in procs]
            if any(c not in (None, 0) for c in codes):
                logger.error("a worker exited with code %s; see %s", [c for c in codes if c], args.log_dir)
                return WORKER_CHILD_FAILED
            if all(c == 0 for c in codes):
                return OK
            time.sleep(0.2)
        return INTERRUPTED
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
