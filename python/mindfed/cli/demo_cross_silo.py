"""`mindfed demo --mode cross_silo`: a local CLOUD_TRAINING cluster (embedded Redis, a scheduler, N servers) and one
worker process per silo, each training LeNet-5 on its own non-IID shard of the digits and synchronising every window.

The workers are `mindfed.cli.worker_cross_silo` processes (each an HTTP client of one server, dealt out round-robin);
the demo itself only watches: after every iteration it fetches the global model like a device (getModel) and prints
its accuracy on the held-out split.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mindfed.cache.embedded import EmbeddedRedis
from mindfed.cli.demo_cluster import (
    TARGET_ACCURACY,
    consecutive_address,
    free_base_port,
    print_cluster,
    wait_for_cluster,
)
from mindfed.cli.launcher import SchedulerLaunch, ServerLaunch
from mindfed.config import FLConfig, load, to_dict
from mindfed.errors import ConfigError
from mindfed.model.lenet import init_lenet5
from mindfed.server.capabilities import check_supported

DEFAULT_ITERATIONS = 15
SYNC_FREQUENCY = 40  # SGD steps of batch client_batch_size per window: about two local epochs of a digits silo
WORKER_LR = {"Scaffold": 0.05}  # Scaffold trains plain SGD (its correction assumes it); the others SGD + momentum


def cross_silo_config(args: argparse.Namespace, workers: int) -> tuple[FLConfig, str]:
    """The demo's YAML (or --yaml_config) as a CLOUD_TRAINING job every worker joins each iteration."""
    overrides: dict[str, object] = {"server_mode": "CLOUD_TRAINING", "round.start_fl_job_threshold": workers}
    if getattr(args, "iterations", 0):
        overrides["fl_iteration_num"] = args.iterations
    if getattr(args, "aggregation_type", ""):
        overrides["aggregation.aggregation_type"] = args.aggregation_type
    if getattr(args, "encrypt_train_type", ""):
        overrides["encrypt.encrypt_train_type"] = args.encrypt_train_type
    if getattr(args, "yaml_config", ""):
        config, source = load(args.yaml_config, overrides), args.yaml_config
    else:
        overrides.setdefault("fl_iteration_num", DEFAULT_ITERATIONS)
        overrides["aggregation.total_client_num"] = workers  # Scaffold's divisor: every silo takes part
        overrides["aggregation.iid_rate"] = 0.1  # FedProx's μ (MindSpore reads it from iid_rate)
        with resources.as_file(resources.files("mindfed.cli").joinpath("demo.yaml")) as path:
            config, source = load(path, overrides), "the built-in demo config (CLOUD_TRAINING)"
    check_supported(config, source)
    return config, source


def run_cross_silo_demo(args: argparse.Namespace) -> int:
    """Run the demo; prints the test accuracy of every iteration. Returns the exit code (0 once it ran)."""
    workers = int(getattr(args, "devices", 4) or 4)
    config, source = cross_silo_config(args, workers)
    servers = max(int(getattr(args, "servers", 1) or 1), 1)
    seed, alpha = int(getattr(args, "seed", 0)), float(getattr(args, "alpha", 0.5))
    out = Path(getattr(args, "output", "mindfed-demo-cross-silo")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in (*(out / "fl_ckpt").glob("*.ckpt"), out / "server" / "metrics.json"):
        stale.unlink(missing_ok=True)
    from mindfed.data.digits import load_federated_digits  # noqa: PLC0415 - scikit-learn, after the cheap checks

    data = load_federated_digits(workers, alpha=alpha, seed=seed)
    with EmbeddedRedis(data_dir=out / "redis") as redis:
        cache_address = redis.address_for(config.enable_ssl)
        effective = to_dict(config)
        effective["distributed_cache"]["address"] = cache_address
        config_path = out / "config.yaml"
        config_path.write_text(yaml.safe_dump(effective, sort_keys=False))
        model_path = out / "initial_lenet5.npz"
        initial = init_lenet5(data.num_classes, data.num_channel, seed=seed)
        np.savez(model_path, allow_pickle=True, **{name: initial[name] for name in initial.names})
        launch = ServerLaunch(yaml_config=str(config_path), local_server_num=servers,
                              http_server_address=consecutive_address(
                                  getattr(args, "http_server_address", "127.0.0.1:0"), servers),
                              log_dir=out / "logs", cache_address=cache_address,
                              process_args=["--checkpoint_dir", str(out / "fl_ckpt"), "--model", str(model_path),
                                            "--output_dir", str(out / "server"), "--tcp_server_ip", "127.0.0.1"])
        scheduler = SchedulerLaunch(str(config_path), f"127.0.0.1:{free_base_port('127.0.0.1', 1)}", cache_address,
                                    out / "logs")
        kind = config.aggregation.aggregation_type
        print(f"mindfed demo (cross-silo): {config.fl_iteration_num} iterations, {workers} workers, {servers} "
              f"servers, {kind}, {config.encrypt.encrypt_train_type}, {source}")
        procs: list[subprocess.Popen[bytes]] = []
        started = time.monotonic()
        try:
            scheduler.start()
            launch.start(config)
            state = wait_for_cluster(scheduler, launch, servers)
            addresses = launch.http_addresses()
            print_cluster(scheduler, launch, [f"http://{a}" for a in addresses], state, out / "logs")
            procs = [_start_worker(out, config_path, addresses[i % servers], i, workers, seed, alpha,
                                   WORKER_LR.get(str(kind), config.client.client_learning_rate))
                     for i in range(workers)]
            records = asyncio.run(_watch(config, addresses[0], data.test, data.num_classes, procs))
        finally:
            _stop_workers(procs)
            try:
                launch.stop()
            finally:
                scheduler.stop()
    return _report(out, records, time.monotonic() - started, [p.returncode for p in procs])


def _stop_workers(procs: list[subprocess.Popen[bytes]], grace_s: float = 30.0) -> None:
    """Let the workers finish their last window (the model is served), then terminate those still running."""
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)


def _start_worker(out: Path, config_path: Path, address: str, index: int, workers: int, seed: int, alpha: float,
                  lr: float) -> subprocess.Popen[bytes]:
    log = (out / "logs" / f"worker_{index}.log").open("wb")
    try:
        return subprocess.Popen(  # noqa: S603 - our own module and arguments
            [sys.executable, "-m", "mindfed.cli.worker_cross_silo", "--yaml_config", str(config_path),
             "--http_server_address", address, "--worker_index", str(index), "--worker_num", str(workers),
             "--sync_frequency", str(SYNC_FREQUENCY), "--seed", str(seed), "--alpha", str(alpha),
             "--client_learning_rate", str(lr)], stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()  # the child holds its own descriptor


async def _watch(config: FLConfig, address: str, test: Any, num_class: int,
                 procs: list[subprocess.Popen[bytes]]) -> list[dict[str, Any]]:
    """The global model of every iteration, evaluated on the held-out split as soon as it is served."""
    from mindfed.client.device import DeviceClient, PlainText  # noqa: PLC0415 - torch, the demo extra
    from mindfed.client.trainer import evaluate  # noqa: PLC0415
    from mindfed.protocol.codes import ResponseCode  # noqa: PLC0415

    records: list[dict[str, Any]] = []
    deadline_s = 2 * config.round.global_iteration_time_window / 1000 + 30
    async with DeviceClient(f"http://{address}", config.fl_name, "demo-observer", poll_interval_s=0.2) as client:
        for iteration in range(1, config.fl_iteration_num + 1):
            waited = time.monotonic()
            while True:
                if all(p.poll() is not None for p in procs) and time.monotonic() - waited > 10:
                    raise ConfigError("every worker exited before the run ended; see the logs/worker_*.log files")
                if time.monotonic() - waited > deadline_s:
                    raise ConfigError(f"iteration {iteration} was not aggregated within {deadline_s:.0f} s")
                result = await client.get_model(iteration)
                if not isinstance(result, PlainText) and result.retcode == ResponseCode.SUCCEED:
                    break
                await asyncio.sleep(0.2)
            weights = {t.name: np.array(t.data) for t in result.feature_map}
            accuracy, loss = evaluate(weights, test, num_class)
            records.append({"currentIteration": iteration, "testAccuracy": accuracy, "testLoss": loss})
            print(f"  iteration {iteration:3d}: test accuracy {accuracy:.2%}, test loss {loss:.4f}", flush=True)
    return records


def _report(out: Path, records: list[dict[str, Any]], elapsed_s: float, worker_codes: list[int | None]) -> int:
    final = records[-1]["testAccuracy"] if records else 0.0
    import json  # noqa: PLC0415

    (out / "metrics.json").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    print(f"\nfinal test accuracy {final:.2%} after {len(records)} iterations in {elapsed_s:.1f} s "
          f"({'reached' if final >= TARGET_ACCURACY else 'below'} the {TARGET_ACCURACY:.0%} target); "
          f"worker exit codes {worker_codes}")
    print(f"  metrics: {out / 'metrics.json'}; server metrics: {out / 'server' / 'metrics.json'}; logs: {out / 'logs'}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `python -m mindfed.cli.demo_cross_silo` (a subset of `mindfed demo`'s, plus the rule)."""
    parser.add_argument("--yaml_config", default="")
    parser.add_argument("--devices", type=int, default=4, help="worker processes (silos), default 4")
    parser.add_argument("--iterations", type=int, default=0)
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument("--output", default="mindfed-demo-cross-silo")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aggregation_type", default="", help="FedAvg (default), FedProx, Scaffold or FedNova")
    parser.add_argument("--encrypt_train_type", default="", help="NOT_ENCRYPT (default) or STABLE_PW_ENCRYPT")


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="mindfed demo --mode cross_silo")
    add_arguments(cli)
    sys.exit(run_cross_silo_demo(cli.parse_args()))
