"""`mindfed demo`: a local cluster (embedded Redis + server) training LeNet-5 with simulated devices.

Devices use scikit-learn's handwritten digits, split non-IID across them (Dirichlet label skew); after every
iteration the demo fetches the global model like a device would (getModel) and evaluates it on the held-out split.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from importlib import resources
from pathlib import Path

import yaml

from mindfed.cache.embedded import EmbeddedRedis
from mindfed.cli.launcher import ServerLaunch
from mindfed.cli.progress import DemoProgress
from mindfed.config import FLConfig, load, to_dict
from mindfed.errors import ConfigError
from mindfed.model.lenet import init_lenet5
from mindfed.server.capabilities import check_supported
from mindfed.summary.metrics_file import read_all
from mindfed.summary.plot import plot_training

logger = logging.getLogger(__name__)
TARGET_ACCURACY = 0.90


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yaml_config", default="", help="a YAML of the seed's schema (default: the demo's own)")
    parser.add_argument("--devices", type=int, default=8, help="simulated devices (default 8)")
    parser.add_argument("--iterations", type=int, default=0, help="override fl_iteration_num")
    parser.add_argument("--output", default="mindfed-demo", help="directory for metrics, plot, logs, checkpoints")
    parser.add_argument("--http_server_address", default="127.0.0.1:0",
                        help="first server address (port 0: a free port)")
    parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet label-skew concentration")
    parser.add_argument("--seed", type=int, default=0)


def demo_config(args: argparse.Namespace) -> tuple[FLConfig, str]:
    """The effective config, and where it came from."""
    overrides: dict[str, object] = {}
    if args.iterations:
        overrides["fl_iteration_num"] = args.iterations
    if args.yaml_config:
        config = load(args.yaml_config, overrides)
        source = args.yaml_config
    else:
        overrides["round.start_fl_job_threshold"] = args.devices  # every device takes part in every iteration
        with resources.as_file(resources.files("mindfed.cli").joinpath("demo.yaml")) as path:
            config = load(path, overrides)
        source = "the built-in demo config"
    check_supported(config, source)
    if config.round.start_fl_job_threshold > args.devices:
        raise ConfigError(f"{source}: round.start_fl_job_threshold is {config.round.start_fl_job_threshold} but "
                          f"only {args.devices} devices run: no iteration could complete; use --devices "
                          f"{config.round.start_fl_job_threshold} or more")
    return config, source


def run(args: argparse.Namespace) -> int:
    config, source = demo_config(args)
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.json", "summary.json", "server/metrics.json", "server/event.txt"):
        (out / stale).unlink(missing_ok=True)
    with EmbeddedRedis(data_dir=out / "redis") as redis:
        effective = to_dict(config)
        effective["distributed_cache"]["address"] = redis.address
        config_path = out / "config.yaml"
        config_path.write_text(yaml.safe_dump(effective, sort_keys=False))
        from mindfed.data.digits import load_federated_digits  # noqa: PLC0415 - after the cheap checks

        data = load_federated_digits(args.devices, alpha=args.alpha, seed=args.seed)
        model_path = out / "initial_lenet5.npz"
        initial = init_lenet5(data.num_classes, data.num_channel, seed=args.seed)
        import numpy as np  # noqa: PLC0415

        np.savez(model_path, **{name: initial[name] for name in initial.names})
        launch = ServerLaunch(yaml_config=str(config_path), http_server_address=args.http_server_address,
                              checkpoint_dir=str(out / "fl_ckpt"), log_dir=out / "logs",
                              extra_args=["--model", str(model_path), "--output_dir", str(out / "server")],
                              cache_address=redis.address)
        print(f"mindfed demo: {config.fl_iteration_num} iterations, {args.devices} devices, {source}")
        print(f"  redis-server pid {redis.pid} at {redis.address}; output in {out}")
        try:
            launch.start()
            url = wait_for_server(launch, out / "logs")
            print(f"  server: {url} (log {out / 'logs'})")
            progress = DemoProgress(config.fl_iteration_num, args.devices)
            started = time.monotonic()
            records = asyncio.run(train(config, url, data, progress, args.seed, out / "server" / "metrics.json"))
        finally:
            launch.stop()
    elapsed = time.monotonic() - started
    return report(out, records, elapsed)


def wait_for_server(launch: ServerLaunch, log_dir: Path, timeout_s: float = 60.0) -> str:
    """The first server's URL, read from its log once it serves (its port may have been chosen by the OS)."""
    deadline = time.monotonic() + timeout_s
    logs = sorted(log_dir.glob("server_*/server.log"))
    while time.monotonic() < deadline:
        for pid, code in launch.poll_failed():
            raise ConfigError(f"server pid {pid} exited with code {code}; see {logs[0] if logs else log_dir}")
        for log in sorted(log_dir.glob("server_*/server.log")):
            for line in log.read_text(errors="replace").splitlines():
                if " serving http://" in line:
                    return line.split(" serving ")[1].split()[0].rstrip(",").rsplit("/", 1)[0]
        time.sleep(0.1)
    raise ConfigError(f"the server did not start within {timeout_s} s; see {log_dir}")


async def train(config: FLConfig, url: str, data: object, progress: DemoProgress, seed: int,
                metrics_path: Path) -> list[dict]:
    from mindfed.cli.demo_observer import observe  # noqa: PLC0415 - imports torch
    from mindfed.client.simulator import Simulator  # noqa: PLC0415

    simulator = Simulator([url], config.fl_name, data.devices, data.num_classes,  # type: ignore[attr-defined]
                          url_prefix=config.client.http_url_prefix, seed=seed, on_event=progress.device_event)
    devices = asyncio.create_task(simulator.run(), name="devices")
    try:
        return await observe(config, url, data.test, data.num_classes, progress, devices,  # type: ignore[attr-defined]
                             metrics_path)
    finally:
        if not devices.done():
            devices.cancel()
        await asyncio.gather(devices, return_exceptions=True)


def report(out: Path, records: list[dict], elapsed_s: float) -> int:
    """metrics.json: the server's spec §9 line of every iteration plus the demo's test accuracy and loss."""
    server_lines = {line["currentIteration"]: line for line in read_all(out / "server" / "metrics.json")}
    merged = [{**server_lines.get(r["currentIteration"], {}), **r} for r in records]
    (out / "metrics.json").write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in merged))
    final = merged[-1]["testAccuracy"] if merged else 0.0
    (out / "summary.json").write_text(json.dumps({"finalTestAccuracy": final, "iterations": len(merged),
                                                  "wallTimeSeconds": round(elapsed_s, 2),
                                                  "targetAccuracy": TARGET_ACCURACY}, indent=1) + "\n")
    plot = plot_training(merged, out / "training.png")
    print(f"\nfinal test accuracy {final:.2%} after {len(merged)} iterations in {elapsed_s:.1f} s "
          f"({'reached' if final >= TARGET_ACCURACY else 'below'} the {TARGET_ACCURACY:.0%} target)")
    print(f"  metrics: {out / 'metrics.json'} (summary: {out / 'summary.json'})")
    print(f"  plot:    {plot}")
    print(f"  checkpoints: {out / 'fl_ckpt'}; logs: {out / 'logs'}")
    return 0


if __name__ == "__main__":
    sys.exit(run(argparse.ArgumentParser().parse_args()))
