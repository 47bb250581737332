"""`mindfed demo`: a local cluster (embedded Redis, a scheduler, N servers) training LeNet-5 with simulated devices;
`--mode hybrid` adds a hybrid worker retraining each aggregate on data of its own (cli/demo_hybrid.py), `--mode
cross_silo` runs cross-silo workers instead of devices (cli/demo_cross_silo.py).

Devices use scikit-learn's handwritten digits, split non-IID across them (Dirichlet label skew), and send every request
to a random server (Java's useElb); after every iteration the demo fetches the global model like a device would
(getModel) and evaluates it on the held-out split.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mindfed.cache.embedded import EmbeddedRedis
from mindfed.cli.demo_cluster import (
    TARGET_ACCURACY,
    consecutive_address,
    free_base_port,
    print_cluster,
    wait_for_cluster,
    wait_for_worker,
)
from mindfed.cli.demo_cross_silo import run_cross_silo_demo
from mindfed.cli.demo_hybrid import WorkerLaunch, split_for_worker, worker_samples
from mindfed.cli.launcher import SchedulerLaunch, ServerLaunch
from mindfed.cli.progress import DemoProgress
from mindfed.config import FLConfig, load, to_dict
from mindfed.errors import ConfigError
from mindfed.model.lenet import init_lenet5
from mindfed.privacy.accountant import PrivacyAccountant, last_iteration
from mindfed.server.capabilities import check_supported
from mindfed.summary.metrics_file import read_all
from mindfed.tls.client import client_context

if TYPE_CHECKING:
    from mindfed.tls.dev_certs import DevCertSet

logger = logging.getLogger(__name__)


MODES = ("device", "hybrid", "cross_silo")
MODE_SERVER_MODES = {"device": "FEDERATED_LEARNING", "hybrid": "HYBRID_TRAINING", "cross_silo": "CLOUD_TRAINING"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=MODES, default="device",
                        help="device: simulated devices only (FEDERATED_LEARNING); hybrid: devices plus a hybrid "
                        "worker (HYBRID_TRAINING); cross_silo: cross-silo workers (CLOUD_TRAINING)")
    parser.add_argument("--yaml_config", default="", help="a YAML of the seed's schema (default: the demo's own)")
    parser.add_argument("--devices", type=int, default=8, help="simulated devices (default 8)")
    parser.add_argument("--iterations", type=int, default=0, help="override fl_iteration_num")
    parser.add_argument("--output", default="mindfed-demo", help="directory for metrics, plot, logs, checkpoints")
    parser.add_argument("--servers", type=int, default=2, help="servers on consecutive ports (default 2)")
    parser.add_argument("--http_server_address", default="127.0.0.1:0",
                        help="first server address; the others take the next ports (port 0: free ports)")
    parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet label-skew concentration")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split, the initial model and the devices")
    parser.add_argument("--tls", action="store_true",
                        help="enable_ssl: make a throwaway CA and server/client certificates in a temporary directory "
                        "and run devices, scheduler and servers over HTTPS")


def demo_config(args: argparse.Namespace, extra: dict[str, object] | None = None) -> tuple[FLConfig, str]:
    """The effective config (with `extra` dotted keys, e.g. --tls's), and where it came from."""
    overrides: dict[str, object] = dict(extra or {})
    mode = getattr(args, "mode", "device")
    if args.iterations:
        overrides["fl_iteration_num"] = args.iterations
    if not args.yaml_config:
        overrides["server_mode"] = MODE_SERVER_MODES[mode]
    if args.yaml_config:
        config = load(args.yaml_config, overrides)
        source = args.yaml_config
    else:
        overrides["round.start_fl_job_threshold"] = args.devices  # every device takes part in every iteration
        with resources.as_file(resources.files("mindfed.cli").joinpath("demo.yaml")) as path:
            config = load(path, overrides)
        source = "the built-in demo config"
    check_supported(config, source)
    if str(config.server_mode) != MODE_SERVER_MODES[mode]:
        modes = {v: k for k, v in MODE_SERVER_MODES.items()}
        raise ConfigError(f"{source}: server_mode: {config.server_mode} cannot run in the {mode} demo: use "
                          f"--mode {modes[str(config.server_mode)]}")
    if args.servers < 1:
        raise ConfigError(f"--servers is {args.servers}: at least one server is needed")
    if config.distributed_cache.replica_acks > 0:
        raise ConfigError(f"{source}: distributed_cache.replica_acks is {config.distributed_cache.replica_acks} but "
                          "the demo runs its own Redis, which has no replica; allowed: 0 (or -1 for the default)")
    if config.round.start_fl_job_threshold > args.devices:
        raise ConfigError(f"{source}: round.start_fl_job_threshold is {config.round.start_fl_job_threshold} but "
                          f"only {args.devices} devices run: no iteration could complete; use --devices "
                          f"{config.round.start_fl_job_threshold} or more")
    return config, source


# The demo extra (`pip install "mindfed[demo]"`): a lean server install has none of them.
DEMO_MODULES = {"torch": "torch", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}


def check_demo_extra() -> None:
    """Refuses to start, naming what is missing, when the demo's own dependencies are not installed."""
    import importlib.util  # noqa: PLC0415

    missing = [package for module, package in DEMO_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(f"mindfed demo needs {', '.join(missing)}: install the demo extra, "
                          "pip install torch==2.13.0 && pip install \"mindfed[demo]\"")


def run(args: argparse.Namespace) -> int:
    check_demo_extra()
    if args.mode == "cross_silo":
        return run_cross_silo_demo(args)
    if not args.tls:
        return run_cluster(args, None)
    from mindfed.tls.dev_certs import write_dev_certs  # noqa: PLC0415 - cryptography: only with --tls
    from mindfed.tls.passwords import CLIENT_PASSWORD_ENV, SERVER_PASSWORD_ENV  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="mindfed-demo-tls-") as tmp:
        certs = write_dev_certs(tmp)
        saved = {name: os.environ.get(name) for name in (SERVER_PASSWORD_ENV, CLIENT_PASSWORD_ENV)}
        # the passwords reach the scheduler and servers as their environment, never their command line
        os.environ[SERVER_PASSWORD_ENV], os.environ[CLIENT_PASSWORD_ENV] = certs.server_password, certs.client_password
        try:
            return run_cluster(args, certs)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def run_cluster(args: argparse.Namespace, certs: DevCertSet | None) -> int:
    """The demo itself; with `certs` (--tls) every connection is HTTPS, verified against their CA."""
    config, source = demo_config(args, certs.yaml_overrides() if certs else None)
    ssl_context = client_context(certs.ca_cert_path) if certs else None
    scheme = "https" if certs else "http"
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.json", "summary.json", "server/metrics.json", "server/event.txt"):
        (out / stale).unlink(missing_ok=True)
    for stale_checkpoint in (out / "fl_ckpt").glob("*.ckpt"):  # servers would resume from them: start fresh
        stale_checkpoint.unlink()
    with EmbeddedRedis(data_dir=out / "redis") as redis:
        cache_address = redis.address_for(config.enable_ssl)
        effective = to_dict(config)
        effective["distributed_cache"]["address"] = cache_address
        config_path = out / "config.yaml"
        config_path.write_text(yaml.safe_dump(effective, sort_keys=False))
        from mindfed.data.digits import load_federated_digits  # noqa: PLC0415 - after the cheap checks

        hybrid = args.mode == "hybrid"
        data = load_federated_digits(args.devices + hybrid, alpha=args.alpha, seed=args.seed)
        worker: WorkerLaunch | None = None
        if hybrid:  # one more share of the digits: the worker's own data
            data, worker_data = split_for_worker(data, out)
            worker = WorkerLaunch(config_path, cache_address, worker_data, worker_samples(worker_data),
                                  out / "logs", seed=args.seed)
        model_path = out / "initial_lenet5.npz"
        initial = init_lenet5(data.num_classes, data.num_channel, seed=args.seed)
        import numpy as np  # noqa: PLC0415

        # allow_pickle given (its default) so the typed **arrays cannot be taken for it
        np.savez(model_path, allow_pickle=True, **{name: initial[name] for name in initial.names})
        launch = ServerLaunch(yaml_config=str(config_path), local_server_num=args.servers,
                              http_server_address=consecutive_address(args.http_server_address, args.servers),
                              log_dir=out / "logs", cache_address=cache_address,
                              process_args=["--checkpoint_dir", str(out / "fl_ckpt"), "--model", str(model_path),
                                            "--output_dir", str(out / "server"),
                                            # a local demo: servers meet on loopback, not the host's address
                                            "--tcp_server_ip", "127.0.0.1"])
        scheduler = SchedulerLaunch(str(config_path), f"127.0.0.1:{free_base_port('127.0.0.1', 1)}", cache_address,
                                    out / "logs", scheme=scheme)
        print(f"mindfed demo: {config.fl_iteration_num} iterations, {args.devices} devices, {args.servers} servers, "
              f"{'1 hybrid worker, ' if worker else ''}{source}")
        print(f"  redis-server pid {redis.pid} at {redis.address}; output in {out}")
        print(f"  privacy: {privacy_mode(config)}")
        if certs:
            print(f"  TLS: HTTPS everywhere, throwaway CA {certs.ca_cert_path} (deleted after the run)")
        try:
            scheduler.start()
            launch.start(config)  # checked by demo_config
            state = wait_for_cluster(scheduler, launch, args.servers, ssl_context=ssl_context)
            if worker is not None:
                worker.start(config)
                state = wait_for_worker(scheduler, worker, ssl_context)
            urls = [f"{scheme}://{address}" for address in launch.http_addresses()]
            print_cluster(scheduler, launch, urls, state, out / "logs")
            node_ids = [node["node_id"] for node in state["nodes"] if node["role"] == "SERVER"]
            progress = DemoProgress(config.fl_iteration_num, args.devices)
            started = time.monotonic()
            records = asyncio.run(train(config, urls, data, progress, args.seed, out / "server" / "metrics.json",
                                        cache_address, node_ids, ssl_context))
        finally:
            try:
                if worker is not None:
                    worker.stop()
                launch.stop()
            finally:
                scheduler.stop()
    elapsed = time.monotonic() - started
    return report(out, records, elapsed, str(config.encrypt.encrypt_train_type))


def privacy_mode(config: FLConfig) -> str:
    """The privacy mode the devices apply, in words (check_supported has refused the ones they cannot)."""
    mode = str(config.encrypt.encrypt_train_type)
    if mode == "PW_ENCRYPT":
        pw = config.encrypt.pw_encrypt
        masked = (f"PW_ENCRYPT applied: devices mask their uploads (X25519 pairwise + own seed, Shamir t = "
                  f"{pw.reconstruct_secrets_threshold}, share_secrets_ratio {pw.share_secrets_ratio:g}); the servers "
                  "see masked updates only and unmask the sum")
        compress = config.compression
        if not compress.secure_compressed_upload:
            return masked
        return (f"{masked}; secure compressed uploads: DIFF_SPARSE_QUANT at rate {compress.upload_sparse_rate:g} "
                f"on the grid ±{compress.secure_quant_bound:g}, the codes masked in Z/2^32")
    if mode == "SIGNDS":
        ds = config.encrypt.signds
        return (f"SIGNDS applied: devices upload sign + index_array only (sign_k {ds.sign_k}, sign_eps "
                f"{ds.sign_eps}, sign_dim_out {ds.sign_dim_out or 'optimal'}, sign_global_lr {ds.sign_global_lr})")
    accountant = PrivacyAccountant.from_config(config)
    if accountant is None:
        return f"{mode} (no privacy: devices upload their plain weights)"
    dp = config.encrypt.dp_encrypt
    budget = (f"budget ε {dp.dp_eps_budget:g}: at most {last_iteration(config)} iterations" if dp.dp_eps_budget
              else "no budget")
    return (f"DP_ENCRYPT: devices clip their update to the adaptive C and add N(0, σ²), σ/C = "
            f"{accountant.noise_multiplier:.4g} (dp_eps {dp.dp_eps:g}, dp_delta {dp.dp_delta:g}); accountant "
            f"q = {accountant.sampling_rate:.4g}, {budget}")


async def train(config: FLConfig, urls: list[str], data: object, progress: DemoProgress, seed: int,
                metrics_path: Path, cache_address: str, node_ids: list[str],
                ssl_context: ssl.SSLContext | None = None) -> list[dict[str, Any]]:
    from mindfed.cli.demo_observer import observe  # noqa: PLC0415 - imports torch
    from mindfed.client.simulator import Simulator  # noqa: PLC0415

    simulator = Simulator(urls, config.fl_name, data.devices, data.num_classes,  # type: ignore[attr-defined]
                          url_prefix=config.client.http_url_prefix, seed=seed, on_event=progress.device_event,
                          ssl_context=ssl_context)
    devices = asyncio.create_task(simulator.run(), name="devices")
    try:
        return await observe(config, urls, data.test, data.num_classes, progress, devices,  # type: ignore[attr-defined]
                             metrics_path, cache_address, node_ids, ssl_context)
    finally:
        if not devices.done():
            devices.cancel()
        await asyncio.gather(devices, return_exceptions=True)


def report(out: Path, records: list[dict[str, Any]], elapsed_s: float, privacy: str = "NOT_ENCRYPT") -> int:
    """metrics.json: the server's spec §9 line of every iteration plus the demo's test accuracy and loss."""
    server_lines = {line["currentIteration"]: line for line in read_all(out / "server" / "metrics.json")}
    merged = [{**server_lines.get(r["currentIteration"], {}), **r} for r in records]
    (out / "metrics.json").write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in merged))
    final = merged[-1]["testAccuracy"] if merged else 0.0
    by_server: dict[str, int] = {}
    for record in records:
        for node_id, count in record.get("updatesByServer", {}).items():
            by_server[node_id] = by_server.get(node_id, 0) + count
    (out / "summary.json").write_text(json.dumps({"finalTestAccuracy": final, "iterations": len(merged),
                                                  "wallTimeSeconds": round(elapsed_s, 2),
                                                  "targetAccuracy": TARGET_ACCURACY,
                                                  "updatesByServer": by_server, "privacyMode": privacy,
                                                  **dp_spent(merged)}, indent=1) + "\n")
    from mindfed.summary.plot import plot_training  # noqa: PLC0415 - matplotlib: the demo extra

    plot = plot_training(merged, out / "training.png")
    print(f"\nfinal test accuracy {final:.2%} after {len(merged)} iterations in {elapsed_s:.1f} s "
          f"({'reached' if final >= TARGET_ACCURACY else 'below'} the {TARGET_ACCURACY:.0%} target)")
    for key, value in dp_spent(merged).items():
        print(f"  {key}: {value}")
    print(f"  accepted updates by server: {', '.join(f'{n} {c}' for n, c in by_server.items()) or '-'}")
    print(f"  metrics: {out / 'metrics.json'} (summary: {out / 'summary.json'})")
    print(f"  plot:    {plot}")
    print(f"  checkpoints: {out / 'fl_ckpt'}; logs: {out / 'logs'}")
    return 0


def dp_spent(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The privacy the run spent, from the last metrics line (DP_ENCRYPT only): ε, δ and the budget's stop."""
    last = lines[-1] if lines else {}
    keys = ("dpEpsilonSpent", "dpDelta", "dpEpsilonBudget", "dpBudgetExhausted")
    return {key: last[key] for key in keys if key in last}


if __name__ == "__main__":
    sys.exit(run(argparse.ArgumentParser().parse_args()))
