"""`FederatedLearningManager` and `PushMetrics`: MindSpore's worker API (spec §1.3, §11) for a torch training loop.

MindSpore's manager is a training Callback (`on_train_step_begin` / `on_train_step_end`); torch has no callbacks, so
the manager keeps those two names and adds `train_step()`, a context manager around one step:

```python
from mindfed import FederatedLearningManager, PushMetrics
with FederatedLearningManager("job.yaml", model, sync_frequency=50) as fl:
    for x, y in batches:
        with fl.train_step():
            optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()
        if fl.window_done:          # HYBRID_TRAINING: the weights of this window are with the servers
            PushMetrics().construct(loss, accuracy)
        if fl.finished:
            break
```

In HYBRID_TRAINING a window of `sync_frequency` steps starts by pulling the devices' aggregate of the next iteration
into `model` (waiting until the devices have made it) and ends by pushing the trained weights; `PushMetrics` then
ends the iteration. In CLOUD_TRAINING the manager hands each window to the cross-silo sync (worker/cross_silo.py).
`sync_type="adaptive"` shortens the window as MindSpore's heuristic decides (worker/adaptive_sync.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mindfed.config import FLConfig, load
from mindfed.config.enums import AggregationType, ServerMode
from mindfed.errors import ConfigError
from mindfed.tls.passwords import CLIENT_PASSWORD_ENV, SERVER_PASSWORD_ENV, password_from_env
from mindfed.worker.adaptive_sync import AdaptiveSync
from mindfed.worker.cross_silo import CrossSiloSync, TrainingFinished
from mindfed.worker.hybrid import JobFinished, Pushed
from mindfed.worker.hybrid_session import HybridSession, WorkerOptions
from mindfed.worker.loop_thread import LoopThread

logger = logging.getLogger(__name__)

SYNC_TYPES = ("fixed", "adaptive")
_active: FederatedLearningManager | None = None  # the manager PushMetrics reports to (MindSpore: one per process)
_active_lock = threading.Lock()


def trainable_weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """name -> float32 copy of every trainable float32 parameter (MindSpore: `trainable_params`)."""
    return {name: p.detach().cpu().numpy().astype(np.float32, copy=True).reshape(p.shape)
            for name, p in model.named_parameters() if p.requires_grad and p.dtype == torch.float32}


def load_weights(model: torch.nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Copy `weights` (flat or shaped float32) into the model's parameters of the same names, in place.

    Raises:
        ValueError: a weight has another number of elements than the parameter.
    """
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            param = params.get(name)
            if param is None:
                continue
            if value.size != param.numel():
                raise ValueError(f"weight {name}: {value.size} values for a parameter of shape {tuple(param.shape)}")
            param.copy_(torch.from_numpy(np.ascontiguousarray(value, np.float32).reshape(param.shape)))


def _check(yaml_config: object, model: object, sync_frequency: object, data_size: object, sync_type: object) -> None:
    if not isinstance(yaml_config, str):
        raise TypeError(f"Parameter 'yaml_config' should be str, but got {type(yaml_config).__name__}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"Parameter 'model' should be a torch.nn.Module, but got {type(model).__name__}")
    for name, value in (("sync_frequency", sync_frequency), ("data_size", data_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Parameter '{name}' should be a positive int, but got {value!r}")
    if sync_type not in SYNC_TYPES:
        raise ValueError(f"Parameter 'sync_type' should be one of {SYNC_TYPES}, but got {sync_type!r}")


class FederatedLearningManager:
    """Synchronises a torch model with the cluster every `sync_frequency` training steps.

    Args:
        yaml_config: the job's YAML (the servers' file: server_mode picks hybrid or cross-silo).
        model: the network; its trainable float32 parameters are exchanged by name.
        sync_frequency: training steps per window (the initial value with `sync_type="adaptive"`).
        http_server_address: CLOUD_TRAINING: the server this worker talks to ("ip:port").
        data_size: CLOUD_TRAINING: the data size reported at startFLJob (1..65535).
        sync_type: "fixed" or "adaptive".
        ssl_config: with enable_ssl, an object with `server_password` and `client_password` (e.g. mindfed.SSLConfig);
            None reads MINDFED_SSL_SERVER_PASSWORD / MINDFED_SSL_CLIENT_PASSWORD.
        heartbeat_ttl_s: HYBRID_TRAINING: lifetime of the worker's heartbeat in Redis (ours; MindSpore's is 10 s).
        config_overrides: dotted YAML keys to override (ours; e.g. {"distributed_cache.address": "..."}).
        **adaptive_kwargs: MindSpore's adaptive-sync options (worker/adaptive_sync.py DEFAULTS).

    Raises:
        TypeError, ValueError: a bad argument (MindSpore's checks).
        ConfigError: the YAML is invalid, or its server_mode has no workers (FEDERATED_LEARNING).
        CacheError: HYBRID_TRAINING and the job's Redis or instance cannot be reached.
    """

    def __init__(self, yaml_config: str, model: torch.nn.Module, sync_frequency: int, http_server_address: str = "",
                 data_size: int = 1, sync_type: str = "fixed", ssl_config: Any = None, *,
                 heartbeat_ttl_s: int = 10, config_overrides: Mapping[str, object] | None = None,
                 **adaptive_kwargs: object) -> None:
        _check(yaml_config, model, sync_frequency, data_size, sync_type)
        self.config: FLConfig = load(yaml_config, config_overrides)
        self._model = model
        self.sync_frequency = sync_frequency
        self._adaptive = AdaptiveSync.create(sync_frequency, **adaptive_kwargs) if sync_type == "adaptive" else None
        self._steps = 0  # steps in the current window
        self._window_start: dict[str, np.ndarray] = {}
        self._last_push: Pushed | None = None
        self._metrics_pushed = True
        self.window_done = False
        self.finished = False
        self._session: HybridSession | None = None
        self._cross_silo: CrossSiloSync | None = None
        self._window_losses: list[float] = []
        self._loop: LoopThread | None = None
        mode = self.config.server_mode
        if mode == ServerMode.HYBRID_TRAINING:
            self._open_hybrid(ssl_config, heartbeat_ttl_s)
        elif mode == ServerMode.CLOUD_TRAINING:
            self._cross_silo = CrossSiloSync(self.config, http_server_address, data_size, ssl_config)
        else:
            raise ConfigError(f"{yaml_config}: server_mode {mode} has no workers (HYBRID_TRAINING or CLOUD_TRAINING)")
        self._activate()
        logger.info("worker: %s, sync_frequency %d (%s)", mode, sync_frequency, sync_type)

    def _open_hybrid(self, ssl_config: Any, heartbeat_ttl_s: int) -> None:
        server_pw = getattr(ssl_config, "server_password", None) or password_from_env(SERVER_PASSWORD_ENV)
        client_pw = getattr(ssl_config, "client_password", None) or password_from_env(CLIENT_PASSWORD_ENV)
        if self.config.enable_ssl and not (server_pw and client_pw):
            raise ConfigError("enable_ssl: the worker needs both p12 passwords (ssl_config, or "
                              f"{SERVER_PASSWORD_ENV} and {CLIENT_PASSWORD_ENV})")
        options = WorkerOptions(heartbeat_ttl_s=heartbeat_ttl_s, ssl_server_password=server_pw,
                                ssl_client_password=client_pw)
        self._loop = LoopThread()
        try:
            self._session = self._loop.call(HybridSession.open(self.config, trainable_weights(self._model), options))
        except BaseException:
            self._loop.close()
            raise

    def _activate(self) -> None:
        global _active  # noqa: PLW0603 - PushMetrics() takes no manager, as in MindSpore
        with _active_lock:
            _active = self

    @property
    def worker_id(self) -> str | None:
        """HYBRID_TRAINING: this worker's id in Redis and in the scheduler's /state."""
        return self._session.membership.worker_id if self._session else None

    @property
    def iteration(self) -> int:
        """HYBRID_TRAINING: the iteration of the window under way (or last finished)."""
        return self._session.worker.iteration if self._session else 0

    # -- the training hook ----------------------------------------------------------------------------------------

    def on_train_step_begin(self) -> None:
        """Before a training step: at the first step of a window, fetch the model to train on."""
        self.window_done = False
        if self.finished or self._steps:
            return
        if self._cross_silo is not None:
            try:
                self._cross_silo.begin_window(self._model)
            except TrainingFinished as exc:
                logger.info("training job finished: %s", exc)
                self.finished = True
                return
        else:
            assert self._session is not None
            if not self._metrics_pushed and self._last_push is not None and self._last_push.accepted:
                logger.warning("it %d: pushWeight was not followed by PushMetrics; the iteration ends only at its "
                               "global timer", self._last_push.iteration)
            try:
                weights = self._call(self._session.worker.pull(list(trainable_weights(self._model))))
            except JobFinished as exc:
                logger.info("training job finished: %s", exc)
                self.finished = True
                return
            load_weights(self._model, weights)
        self._window_start = trainable_weights(self._model)

    def on_train_step_end(self, lr: float | None = None, loss: float | None = None) -> None:
        """After a training step: at the last step of a window, hand the trained weights over.

        Args:
            lr: CLOUD_TRAINING with Scaffold: the learning rate of the step just taken (its control-variate
                correction needs it; required there, ignored elsewhere).
            loss: CLOUD_TRAINING: the step's loss; the window's mean goes to the server (metrics.json's loss).
        """
        if self.finished:
            return
        if self._cross_silo is not None:
            if lr is not None:
                self._cross_silo.after_step(self._model, float(lr))
            elif self._cross_silo.kind == AggregationType.SCAFFOLD:
                raise ValueError("Scaffold: pass each step's learning rate, fl.on_train_step_end(lr=...) or "
                                 "fl.train_step(lr=...)")
            if loss is not None:
                self._window_losses.append(float(loss))
        self._steps += 1
        if self._steps < self.sync_frequency:
            return
        trained = trainable_weights(self._model)
        if self._session is not None:
            try:
                self._last_push = self._call(self._session.worker.push(trained))
            except JobFinished as exc:
                logger.info("training job finished: %s", exc)
                self.finished = True
                return
            self._metrics_pushed = False
        elif self._cross_silo is not None:
            losses, self._window_losses = self._window_losses, []
            try:
                self._cross_silo.end_window(self._model, self._steps,
                                            loss=float(np.mean(losses)) if losses else 0.0)
            except TrainingFinished as exc:
                logger.info("training job finished: %s", exc)
                self.finished = True
                return
        if self._adaptive is not None:
            delta = {n: trained[n] - self._window_start[n] for n in trained if n in self._window_start}
            self.sync_frequency = self._adaptive.after_window(delta, {n: np.abs(d) for n, d in delta.items()})
        self._steps = 0
        self.window_done = True

    @contextlib.contextmanager
    def train_step(self, lr: float | None = None) -> Iterator[StepReport]:
        """`with fl.train_step() as step: ...one optimizer step...; step.loss = loss.item()`: on_train_step_begin
        before, on_train_step_end(lr, step.loss) after (not after a step that raised). `lr`: as on_train_step_end."""
        self.on_train_step_begin()
        report = StepReport()
        yield report
        self.on_train_step_end(lr=lr, loss=report.loss)

    def proximal_term(self) -> torch.Tensor:
        """CLOUD_TRAINING with FedProx: (μ/2)·Σ mean((w − w_global)²) to add to the step's loss (μ =
        aggregation.iid_rate); a zero tensor otherwise."""
        if self._cross_silo is None:
            return torch.zeros((), dtype=torch.float32)
        return self._cross_silo.proximal_term(self._model)

    def push_metrics(self, loss: float, accuracy: float) -> bool:
        """HYBRID_TRAINING: report the window's loss and accuracy; this ends the iteration (spec §11.1).

        Returns:
            True when the server took them; False when there is nothing to end (the last push came too late).
        """
        if self._session is None:
            raise ConfigError(f"PushMetrics is for HYBRID_TRAINING workers; this job is {self.config.server_mode}")
        if self._last_push is None or not self._last_push.accepted:
            logger.warning("PushMetrics without an accepted pushWeight: nothing to end")
            return False
        self._metrics_pushed = True
        try:
            return bool(self._call(self._session.worker.push_metrics(float(loss), float(accuracy))))
        except JobFinished as exc:
            logger.info("training job finished: %s", exc)
            self.finished = True
            return False

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return self._loop.call(coro)

    def close(self) -> None:
        """Leave the cluster (HYBRID_TRAINING: the worker is gone from /state at once) and stop the worker's loop."""
        global _active  # noqa: PLW0603
        with _active_lock:
            if _active is self:
                _active = None
        session, self._session = self._session, None
        if self._loop is not None:
            try:
                if session is not None:
                    self._loop.call(session.close(), timeout_s=15.0)
            finally:
                self._loop.close()
        if self._cross_silo is not None:
            self._cross_silo.close()

    def __enter__(self) -> FederatedLearningManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class StepReport:
    """What a training step tells the manager through `train_step()`: its loss (CLOUD_TRAINING's window mean)."""

    loss: float | None = None


class PushMetrics:
    """MindSpore's `PushMetrics().construct(loss, accuracy)`: the hybrid worker's metrics, ending the iteration."""

    @staticmethod
    def construct(loss: float, accuracy: float) -> bool:
        """Report loss and accuracy through the running FederatedLearningManager.

        Raises:
            ConfigError: no FederatedLearningManager is running in this process.
        """
        with _active_lock:
            manager = _active
        if manager is None:
            raise ConfigError("PushMetrics needs a running FederatedLearningManager (HYBRID_TRAINING)")
        return manager.push_metrics(loss, accuracy)
