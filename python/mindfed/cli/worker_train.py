"""One hybrid worker process: LeNet5 retrained on the cloud's own data (`--dataset_path`), synchronised with the
cluster through FederatedLearningManager every `--sync_frequency` steps, reporting each window's training loss and
accuracy with PushMetrics (spec §11.1; MindSpore's `run_hybrid_train.py --ms_role=MS_WORKER`).

`--dataset_path` is an .npz with `x` (float32, N x 1 x 32 x 32 in [0, 1]) and `y` (int64 labels); without it the
worker trains on the whole training split of the offline digits (mindfed.data.digits).
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import numpy as np
import torch
from torch import nn

from mindfed.client.lenet_torch import LeNet5
from mindfed.data.device_data import DeviceData
from mindfed.errors import ConfigError
from mindfed.worker.manager import FederatedLearningManager, PushMetrics

logger = logging.getLogger(__name__)
MOMENTUM = 0.9  # as the devices' trainer (client/trainer.py)


class Stopped(Exception):  # noqa: N818 - a signal, not a failure
    """SIGTERM: leave the cluster cleanly."""


def load_dataset(path: str, seed: int) -> DeviceData:
    """The worker's training data (see the module docstring).

    Raises:
        ConfigError: the file cannot be read or does not hold x and y of the expected layout.
    """
    if not path:
        from mindfed.data.digits import load_federated_digits  # noqa: PLC0415 - scikit-learn, only here

        return load_federated_digits(1, seed=seed).devices[0]
    try:
        with np.load(Path(path)) as npz:
            return DeviceData(np.asarray(npz["x"], np.float32), np.asarray(npz["y"], np.int64))
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"--dataset_path {path}: {exc}") from None


def batches(data: DeviceData, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled mini-batches, epoch after epoch, forever (the manager's windows span epochs)."""
    generator = torch.Generator().manual_seed(seed)
    x_all, y_all = torch.from_numpy(data.x.copy()), torch.from_numpy(data.y.copy())
    while True:
        for index in torch.split(torch.randperm(data.num_samples, generator=generator), batch_size):
            yield x_all[index], y_all[index]


def device_of(target: str) -> torch.device:
    if target == "CPU":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device_target {target}: no CUDA device is available to torch")
    return torch.device("cuda")


def run_worker(args: argparse.Namespace) -> int:
    """Train until `--fl_iteration_num` windows are pushed or the job finishes; 0 on success."""
    data = load_dataset(args.dataset_path, args.seed)
    device = device_of(args.device_target)
    torch.manual_seed(args.seed)
    model = LeNet5(int(data.y.max()) + 1 if not args.num_class else args.num_class, int(data.x.shape[1]))
    sync_frequency = args.sync_frequency or math.ceil(data.num_samples / args.client_batch_size)
    overrides = {"distributed_cache.address": args.cache_address} if args.cache_address else None

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise Stopped

    signal.signal(signal.SIGTERM, stop)
    with FederatedLearningManager(args.yaml_config, model, sync_frequency, sync_type=args.sync_type,
                                  heartbeat_ttl_s=args.heartbeat_ttl_s, config_overrides=overrides) as fl:
        print(f"worker {fl.worker_id}: {data.num_samples} samples, {sync_frequency} steps per iteration", flush=True)
        model.to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.client_learning_rate, momentum=MOMENTUM)
        loss_fn = nn.CrossEntropyLoss()
        pushed, loss_sum, correct, seen = 0, 0.0, 0, 0
        try:
            for x, y in batches(data, args.client_batch_size, args.seed):
                with fl.train_step():
                    if fl.finished:
                        break
                    if not seen:  # a new window: the pulled model starts it, and so does a fresh momentum
                        optimizer = torch.optim.SGD(model.parameters(), lr=args.client_learning_rate,
                                                    momentum=MOMENTUM)
                    x, y = x.to(device), y.to(device)
                    logits = model(x)
                    loss = loss_fn(logits, y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_sum += float(loss.detach()) * len(y)
                    correct += int((logits.detach().argmax(1) == y).sum())
                    seen += len(y)
                if fl.finished:
                    break
                if fl.window_done:
                    ok = PushMetrics().construct(loss_sum / seen, correct / seen)
                    print(f"iteration {fl.iteration}: train loss {loss_sum / seen:.4f}, train accuracy "
                          f"{correct / seen:.2%}{'' if ok else ' (too late: the iteration had ended)'}", flush=True)
                    pushed += 1
                    loss_sum, correct, seen = 0.0, 0, 0
                    if args.fl_iteration_num and pushed >= args.fl_iteration_num:
                        break
        except Stopped:
            logger.info("SIGTERM: leaving the cluster")
    print(f"worker done after {pushed} iterations{' (job finished)' if fl.finished else ''}", flush=True)
    return 0
