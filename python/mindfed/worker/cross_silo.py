"""A CLOUD_TRAINING (cross-silo) worker's synchronisation with the server, window by window (spec §11.2).

A worker trains its own torch model on its own data and, every sync window (`sync_frequency` steps), joins the
server's current iteration, uploads what the job's aggregation type asks for and loads the new global model:

- FedAvg, FedProx: uploads w·n (n = data_size). FedProx adds (μ/2)·Σ_tensors mean((w − w_global)²) to the local
  loss, μ = `aggregation.iid_rate` (MindSpore's WithFedProxLossCell): `proximal_term(model)`.
- Scaffold: after every optimizer step w −= lr·(c − c_i) (`after_step(model, lr)`); at the window's end
  c_i⁺ = c_i − c + (w_global − w)/(steps·lr), and the upload adds `control.<name>` = c_i⁺ − c_i, unweighted.
  startFLJob hands out the global control variates c.
- FedNova: uploads (w − w_global)/τ with data_size τ = the window's steps, so startFLJob is sent at the window's end,
  when τ is known.

Under STABLE_PW_ENCRYPT the upload is masked (worker/stable_pw_masks.py) after a key exchange with every worker.
The first window starts from the server's current global model, so a worker restarted mid-run rejoins where the
job is instead of pulling it back to its own initial weights.

The API is synchronous, for a plain torch training loop: each call runs the rounds on this object's own event loop
(`asyncio.Runner`) and returns when they are done. Do not call it from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime
from typing import Any

import numpy as np
import torch
from torch import nn

from mindfed.aggregation.rules import CONTROL_PREFIX, SUPPORTED_RULES
from mindfed.client.device import DeviceClient
from mindfed.config import FLConfig
from mindfed.config.enums import AggregationType, EncryptType, ServerMode
from mindfed.errors import ConfigError
from mindfed.tls.client import client_context
from mindfed.worker.cross_silo_client import CrossSiloRounds, TrainingFinished, WindowAborted
from mindfed.worker.torch_params import check_names, load_flat, read_flat

logger = logging.getLogger(__name__)
MAX_DATA_SIZE = 65535  # the server's startFLJob range (spec §3.5 step 5)
WORKER_ENCRYPT = frozenset({EncryptType.NOT_ENCRYPT, EncryptType.STABLE_PW_ENCRYPT})

__all__ = ["CrossSiloSync", "TrainingFinished", "WindowAborted", "worker_fl_id"]


def worker_fl_id() -> str:
    """MindSpore's worker id: `worker_fl_{local time}::{rand}` (CC/worker/worker_node.cc)."""
    stamp = datetime.now().strftime("%Y-%m-%d-%H:%M:%S.%f")
    return f"worker_fl_{stamp[:-3]}.{stamp[-3:]}::{random.randint(10000, 99999)}"


def server_url(address: str, tls: bool) -> str:
    """`ip:port` (MindSpore's http_server_address) or a full URL."""
    if address.startswith(("http://", "https://")):
        return address.rstrip("/")
    if not address:
        raise ConfigError("http_server_address: a cross-silo worker needs its server's ip:port")
    return f"{'https' if tls else 'http'}://{address}"


def check_worker_config(config: FLConfig, data_size: int) -> None:
    """What a cross-silo worker can honour; refused with the key's name otherwise."""
    if config.server_mode != ServerMode.CLOUD_TRAINING:
        raise ConfigError(f"server_mode: {config.server_mode}: a cross-silo worker needs CLOUD_TRAINING")
    if config.aggregation.aggregation_type not in SUPPORTED_RULES:
        raise ConfigError(f"aggregation.aggregation_type: {config.aggregation.aggregation_type} (supported: "
                          + ", ".join(sorted(SUPPORTED_RULES)) + ")")
    if config.encrypt.encrypt_train_type not in WORKER_ENCRYPT:
        raise ConfigError(f"encrypt.encrypt_train_type: {config.encrypt.encrypt_train_type} under CLOUD_TRAINING "
                          "(workers apply only " + ", ".join(sorted(WORKER_ENCRYPT)) + ")")
    if isinstance(data_size, bool) or not isinstance(data_size, int) or not 1 <= data_size <= MAX_DATA_SIZE:
        raise ConfigError(f"data_size: {data_size!r} must be an int in [1, {MAX_DATA_SIZE}]")


class CrossSiloSync:
    """The worker's side of each sync window, for one model.

    Args:
        config: the job's YAML (server_mode CLOUD_TRAINING).
        http_server_address: the server's `ip:port` (or an http(s) URL); https under `enable_ssl`.
        data_size: the worker's sample count n in [1, 65535] (FedNova reports its steps instead).
        ssl_config: under enable_ssl, anything with a `ca_cert_path` (the job API's SSLConfig); None uses the
            YAML's `ssl.ca_cert_path` to verify the server.
        fl_id: the worker's id (default: a fresh `worker_fl_...`).
        poll_interval_s: pause between polls (getKeys, getModel) and retries.
        deadline_s: the longest one round may take (default: twice the global iteration window, plus 30 s: an
            iteration that fails and the next one).

    Raises:
        ConfigError: a mode the worker cannot honour, or a data_size out of range.
    """

    def __init__(self, config: FLConfig, http_server_address: str, data_size: int, ssl_config: Any = None, *,
                 fl_id: str | None = None, poll_interval_s: float = 0.2, deadline_s: float | None = None) -> None:
        check_worker_config(config, data_size)
        self.config, self.data_size = config, data_size
        self.kind = config.aggregation.aggregation_type
        self.stable_pw = config.encrypt.encrypt_train_type == EncryptType.STABLE_PW_ENCRYPT
        ssl_context = None
        if config.enable_ssl:
            ca = getattr(ssl_config, "ca_cert_path", None) or config.ssl.ca_cert_path
            ssl_context = client_context(ca)
        deadline = deadline_s or 2 * config.round.global_iteration_time_window / 1000 + 30
        client = DeviceClient(server_url(http_server_address, config.enable_ssl), config.fl_name,
                              fl_id or worker_fl_id(), url_prefix=config.client.http_url_prefix,
                              poll_interval_s=poll_interval_s, ssl_context=ssl_context)
        self._rounds = CrossSiloRounds(client, deadline)
        self._runner = asyncio.Runner()
        self._shapes: dict[str, tuple[int, ...]] = {}  # the server's model weights (getModel), name -> shape
        self._global: dict[str, np.ndarray] = {}  # the last global model: FedProx's and FedNova's anchor
        self._iteration = 0  # the iteration startFLJob admitted this worker to (0: none this window)
        self._c_global: dict[str, np.ndarray] = {}  # Scaffold: c and c_i, per model weight
        self._c_local: dict[str, np.ndarray] = {}
        self._lr = 0.0
        self._scaffold_steps = 0
        self.iterations_synced = 0
        if self.kind == AggregationType.FED_PROX and config.aggregation.iid_rate == 0.0:
            logger.warning("FedProx with aggregation.iid_rate 0: the proximal term is 0, this is FedAvg")

    @property
    def fl_id(self) -> str:
        return self._rounds.fl_id

    @property
    def iteration(self) -> int:
        """The iteration of the current (or last) window."""
        return self._iteration

    def close(self) -> None:
        """Close the HTTP session and the event loop."""
        self._runner.run(self._rounds.client.close())
        self._runner.close()

    def __enter__(self) -> CrossSiloSync:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the window --------------------------------------------------------------------------------------------

    def begin_window(self, model: nn.Module) -> None:
        """At the first step of a window: startFLJob (FedNova: at the window's end), Scaffold's global c; the first
        window also loads the server's current global model into `model`.

        Raises:
            TrainingFinished: the server's job is finished or disabled.
            ConfigError: `model` lacks a weight the server aggregates.
        """
        self._runner.run(self._begin(model))

    def after_step(self, model: nn.Module, lr: float) -> None:
        """Scaffold: after every optimizer step, w −= lr·(c − c_i) (no-op for the other types)."""
        if self.kind != AggregationType.SCAFFOLD:
            return
        self._lr, self._scaffold_steps = lr, self._scaffold_steps + 1
        state = model.state_dict()
        with torch.no_grad():
            for name, c in self._c_global.items():
                correction = torch.from_numpy(lr * (c - self._c_local[name]))
                state[name].sub_(correction.reshape(state[name].shape))

    def proximal_term(self, model: nn.Module) -> torch.Tensor:
        """FedProx: (μ/2)·Σ_tensors mean((w − w_global)²), μ = aggregation.iid_rate; add it to the local loss.
        A zero tensor under the other types (and before the first window)."""
        params = dict(model.named_parameters())
        term = torch.zeros((), dtype=torch.float32)
        if self.kind != AggregationType.FED_PROX or not self._global:
            return term
        mu = float(self.config.aggregation.iid_rate)
        for name, anchor in self._global.items():
            if name in params:
                diff = params[name] - torch.from_numpy(anchor).reshape(params[name].shape)
                term = term + (mu / 2.0) * torch.mean(diff * diff)
        return term

    def end_window(self, model: nn.Module, steps: int, loss: float = 0.0, accuracy: float = 0.0) -> None:
        """After the window's `steps` optimizer steps: upload, wait for the iteration's global model, load it.

        A round the server ends for this worker (the iteration failed or filled up meanwhile) costs the window's
        upload, never the run: the worker then loads the current global model and goes on.

        Args:
            model: the trained model; its weights are replaced by the new global model.
            steps: optimizer steps since begin_window (>= 1).
            loss: mean local loss of the window (metrics.json's loss).
            accuracy: local accuracy (metrics.json's accuracy).

        Raises:
            TrainingFinished: the server's job is finished or disabled.
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if self.kind == AggregationType.SCAFFOLD and self._scaffold_steps == 0:
            raise RuntimeError("Scaffold: call after_step(model, lr) after every optimizer step")
        self._runner.run(self._end(model, steps, loss, accuracy))

    async def _begin(self, model: nn.Module) -> None:
        if not self._shapes:
            _, weights = await self._rounds.current_model()
            self._shapes = {name: tuple(model.state_dict()[name].shape) if name in model.state_dict() else
                            (int(np.size(value)),) for name, value in weights.items()}
            check_names(model, self._shapes)
            load_flat(model, weights)
            self._global = {name: np.asarray(v, np.float32).reshape(-1).copy() for name, v in weights.items()}
            if self.kind == AggregationType.SCAFFOLD:
                self._c_global = {n: np.zeros_like(v) for n, v in self._global.items()}
                self._c_local = {n: np.zeros_like(v) for n, v in self._global.items()}
        self._iteration, self._scaffold_steps = 0, 0
        if self.kind != AggregationType.FED_NOVA:
            await self._join(self.data_size)

    async def _join(self, data_size: int) -> None:
        job = await self._rounds.join(data_size)
        self._iteration = job.iteration
        if self.kind == AggregationType.SCAFFOLD:
            received = {t.name[len(CONTROL_PREFIX):]: np.array(t.data) for t in job.feature_map}
            missing = sorted(set(self._c_global) - set(received))
            if missing:
                raise WindowAborted(f"startFLJob: the server sent no control variate for {missing[:5]}")
            self._c_global = {name: received[name] for name in self._c_global}

    async def _end(self, model: nn.Module, steps: int, loss: float, accuracy: float) -> None:
        weights = read_flat(model, self._shapes)
        c_next: dict[str, np.ndarray] = {}
        try:
            if self.kind == AggregationType.FED_NOVA:
                await self._join(min(steps, MAX_DATA_SIZE))
                tau = float(min(steps, MAX_DATA_SIZE))
                upload = {n: (w - self._global[n]) / np.float32(tau) for n, w in weights.items()}
            else:
                n = np.float32(self.data_size)
                upload = {name: w * n for name, w in weights.items()}
            if self.kind == AggregationType.SCAFFOLD:
                for name, w in weights.items():
                    c_next[name] = (self._c_local[name] - self._c_global[name]
                                    + (self._global[name] - w) / np.float32(steps * self._lr))
                    upload[CONTROL_PREFIX + name] = c_next[name] - self._c_local[name]
            if self.stable_pw:
                keys, peers = await self._rounds.exchange_keys(self._iteration)
                upload = keys.mask(upload, peers)
            await self._rounds.upload(self._iteration, upload, loss, accuracy)
            _, new_global = await self._rounds.model_of(self._iteration)
        except WindowAborted as aborted:
            logger.warning("%s: window of iteration %d given up (%s); adopting the current global model",
                           self.fl_id, self._iteration, aborted)
            c_next = {}
            _, new_global = await self._rounds.current_model()
        load_flat(model, {n: new_global[n] for n in self._shapes if n in new_global})
        self._global = {n: np.asarray(new_global[n], np.float32).reshape(-1).copy() for n in self._shapes
                        if n in new_global}
        if c_next:
            self._c_local = c_next
        self.iterations_synced += 1
