"""`mindfed demo --mode hybrid`: the device demo plus one hybrid worker process (spec §11.1).

The digits' training split is shared out over the devices and one more share for the worker, the cloud's own data.
Every iteration the devices' aggregate goes to the worker, which retrains it for one epoch of its share and pushes it
back; the demo scores the model devices then download (getModel), as in the device demo.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mindfed.cli.launcher import cache_address_for_child
from mindfed.config import FLConfig
from mindfed.errors import ConfigError

if TYPE_CHECKING:
    from mindfed.data.digits import FederatedDataset

WORKER_BATCH_SIZE = 32
WORKER_LEARNING_RATE = 0.02


def split_for_worker(data: FederatedDataset, out: Path) -> tuple[FederatedDataset, Path]:
    """The devices' dataset without its last share, and that share saved for the worker (`--dataset_path`)."""
    from mindfed.data.digits import FederatedDataset  # noqa: PLC0415 - scikit-learn

    share = data.devices[-1]
    path = out / "worker_data.npz"
    np.savez(path, x=share.x, y=share.y)
    return FederatedDataset(data.devices[:-1], data.test, data.num_classes, data.num_channel), path


def worker_samples(path: Path) -> int:
    with np.load(path) as npz:
        return int(len(npz["y"]))


@dataclass(slots=True)
class WorkerLaunch:
    """One `mindfed worker` process of the demo, logging to `log_dir/worker_0/worker.log`."""

    config_path: Path
    cache_address: str
    dataset_path: Path
    samples: int
    log_dir: Path
    seed: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.log_dir / "worker_0" / "worker.log"

    @property
    def sync_frequency(self) -> int:
        return math.ceil(self.samples / WORKER_BATCH_SIZE)  # one epoch of the worker's share per iteration

    def start(self, config: FLConfig) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "mindfed.cli.main", "worker", "--yaml_config", str(self.config_path),
               "--cache_address", cache_address_for_child(self.cache_address, env),
               "--dataset_path", str(self.dataset_path), "--sync_frequency", str(self.sync_frequency),
               "--client_batch_size", str(WORKER_BATCH_SIZE), "--client_learning_rate", str(WORKER_LEARNING_RATE),
               "--num_class", "10", "--seed", str(self.seed), "--fl_iteration_num", str(config.fl_iteration_num)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env)

    def check(self) -> None:
        """Raises ConfigError when the worker exited with an error."""
        code = None if self.process is None else self.process.poll()
        if code not in (None, 0):
            raise ConfigError(f"the worker exited with code {code}; see {self.log_path}")

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)
