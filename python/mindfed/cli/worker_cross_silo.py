"""`mindfed worker` under CLOUD_TRAINING: cross-silo workers training LeNet-5 on their own data (spec §11.2).

Each worker is an HTTP(S) client of one server (`--http_server_address`). Its data is a shard of the built-in digits
split non-IID (`--worker_index` of `--worker_num`), or, with `--dataset_path`, LEAF FEMNIST shards (users dealt out
round-robin over the workers). `--local_worker_num N` starts N worker processes here, indices from --worker_index.

Also runnable alone: `python -m mindfed.cli.worker_cross_silo --yaml_config job.yaml --http_server_address ...`.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from mindfed.cli.exit_codes import CONFIG_ERROR, OK, WORKER_SYNC_FAILED
from mindfed.config import load
from mindfed.data.device_data import DeviceData
from mindfed.errors import ConfigError, NetworkError
from mindfed.runtime.logs import configure_logging

logger = logging.getLogger(__name__)
FEMNIST_CLASSES = 62  # LEAF FEMNIST: digits, upper and lower case letters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The cross-silo worker's flags (MindSpore's worker script's, plus the shard and window choices)."""
    parser.add_argument("--yaml_config", required=True, help="the job's YAML (server_mode CLOUD_TRAINING)")
    parser.add_argument("--http_server_address", default="", help="the server's ip:port")
    parser.add_argument("--data_size", type=int, default=0,
                        help="reported sample count, 1..65535 (default: the shard's size, capped)")
    parser.add_argument("--dataset_path", default="", help="LEAF FEMNIST shards (default: the built-in digits)")
    parser.add_argument("--sync_type", choices=("fixed", "adaptive"), default="fixed",
                        help="fixed windows of --sync_frequency steps (adaptive needs the FederatedLearningManager)")
    parser.add_argument("--sync_frequency", type=int, default=40, help="optimizer steps per sync window")
    parser.add_argument("--local_worker_num", type=int, default=1, help="worker processes to start here")
    parser.add_argument("--worker_index", type=int, default=0, help="this worker's shard (first one with N > 1)")
    parser.add_argument("--worker_num", type=int, default=0, help="shards of the data (default: local_worker_num)")
    parser.add_argument("--fl_iteration_num", type=int, default=0, help="windows to train (default: the YAML's)")
    parser.add_argument("--client_batch_size", type=int, default=0, help="default: client.client_batch_size")
    parser.add_argument("--client_learning_rate", type=float, default=0.0, help="default: client.client_learning_rate")
    parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet label skew of the digits split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the digits split and the shuffling")
    parser.add_argument("--device_target", default="CPU", help="accepted for MindSpore's scripts; torch runs on CPU")
    parser.add_argument("--log_dir", default="logs", help="where --local_worker_num > 1 writes worker_<i>.log")


def shard(args: argparse.Namespace) -> DeviceData:
    """This worker's training data."""
    count = args.worker_num or max(args.local_worker_num, 1)
    if not 0 <= args.worker_index < count:
        raise ConfigError(f"--worker_index {args.worker_index} is not in [0, {count})")
    if args.dataset_path:
        from mindfed.data.femnist import load_leaf_femnist  # noqa: PLC0415

        users = load_leaf_femnist(args.dataset_path)
        mine = [users[name] for i, name in enumerate(sorted(users)) if i % count == args.worker_index]
        if not mine:
            raise ConfigError(f"--dataset_path {args.dataset_path}: no LEAF users for worker {args.worker_index}")
        return DeviceData(np.concatenate([d.x for d in mine]), np.concatenate([d.y for d in mine]))
    from mindfed.data.digits import load_federated_digits  # noqa: PLC0415

    silo: DeviceData = load_federated_digits(count, alpha=args.alpha, seed=args.seed).devices[args.worker_index]
    return silo


def with_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """`args` completed with this module's defaults: `mindfed worker` parses the flags it shares with the hybrid
    worker and may lack the cross-silo ones."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = vars(parser.parse_args(["--yaml_config", args.yaml_config]))
    return argparse.Namespace(**{**defaults, **{k: v for k, v in vars(args).items() if v is not None}})


def run(args: argparse.Namespace) -> int:
    """`mindfed worker` with a CLOUD_TRAINING YAML: train, synchronising every window; returns the exit code."""
    args = with_defaults(args)
    if args.local_worker_num > 1:
        return _spawn_local_workers(args)
    import torch  # noqa: PLC0415 - the worker's own dependency, not the CLI's

    from mindfed.client.lenet_torch import LeNet5  # noqa: PLC0415
    from mindfed.worker.cross_silo import CrossSiloSync  # noqa: PLC0415
    from mindfed.worker.cross_silo_trainer import train_cross_silo  # noqa: PLC0415

    try:
        config = load(args.yaml_config)
        if args.sync_type != "fixed":
            raise ConfigError("--sync_type adaptive: use FederatedLearningManager(sync_type='adaptive'); the "
                              "command-line worker trains fixed windows")
        data = shard(args)
        data_size = args.data_size or min(data.num_samples, 65535)
        torch.set_num_threads(1)  # several workers share the host's cores
        torch.manual_seed(args.seed + args.worker_index)
        model = LeNet5(FEMNIST_CLASSES if args.dataset_path else 10, int(data.x.shape[1]))
        with CrossSiloSync(config, args.http_server_address, data_size) as sync:
            logger.info("worker %s: %d samples, %s, %s", sync.fl_id, data.num_samples,
                        config.aggregation.aggregation_type, config.encrypt.encrypt_train_type)
            results = train_cross_silo(sync, model, data, args.fl_iteration_num or config.fl_iteration_num,
                                       args.sync_frequency, args.client_batch_size or config.client.client_batch_size,
                                       args.client_learning_rate or config.client.client_learning_rate,
                                       seed=args.seed + args.worker_index)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    except (NetworkError, TimeoutError) as exc:
        print(f"error: the server did not answer in time: {exc!r}", file=sys.stderr)
        return WORKER_SYNC_FAILED
    print(f"worker {args.worker_index}: {len(results)} iterations synced")
    return OK


def _spawn_local_workers(args: argparse.Namespace) -> int:
    """N worker processes (indices worker_index .. +N-1), logs in --log_dir; returns the worst exit code."""
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    count = args.worker_num or args.local_worker_num
    procs = []
    for i in range(args.local_worker_num):
        index = args.worker_index + i
        with (log_dir / f"worker_{index}.log").open("wb") as log:
            procs.append(subprocess.Popen(  # noqa: S603 - our own module, our own arguments
                [sys.executable, "-m", "mindfed.cli.worker_cross_silo", *forwarded(args), "--worker_index",
                 str(index), "--worker_num", str(count), "--local_worker_num", "1"],
                stdout=log, stderr=subprocess.STDOUT))
    return max(proc.wait() for proc in procs)


def forwarded(args: argparse.Namespace) -> list[str]:
    """The flags a child worker needs, rebuilt from the parsed values (the launcher's own argv may be another
    command's, `mindfed worker ...`)."""
    out = ["--yaml_config", args.yaml_config, "--http_server_address", args.http_server_address,
           "--sync_type", args.sync_type, "--sync_frequency", str(args.sync_frequency),
           "--alpha", str(args.alpha), "--seed", str(args.seed)]
    for flag in ("data_size", "fl_iteration_num", "client_batch_size", "client_learning_rate"):
        if getattr(args, flag):
            out += [f"--{flag}", str(getattr(args, flag))]
    if args.dataset_path:
        out += ["--dataset_path", args.dataset_path]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mindfed worker (CLOUD_TRAINING)", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
