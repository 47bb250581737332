"""MindSpore Federated's `FLServerJob` (spec §1.2) over `mindfed.server.node.ServerNode`.

`run()` is a process entry point like `mindfed.cli.server_process`: it owns an event loop (`asyncio.run`) and blocks
until SIGTERM/SIGINT. The server it runs is the one every other launcher runs; the API only converts the
parameters, the feature map and the callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mindfed.api.callback import Callback, CallbackContext
from mindfed.api.errors import JobConfigError, JobTypeError, JobValueError
from mindfed.api.feature_map import FeatureMap, is_empty_map, to_model_weights
from mindfed.api.params import check_http_server_address, check_str
from mindfed.api.signals import StopSwitch, reload_tls_on_sighup, stop_on_signals
from mindfed.api.ssl_config import check_ssl_config, ssl_path_overrides
from mindfed.errors import CacheError, ConfigError
from mindfed.server.on_stop import FAIL_ITERATION, ON_STOP_CHOICES
from mindfed.server.update_log import UPDATE_LOG_MODES, update_log_mode

if TYPE_CHECKING:
    from mindfed.model.weights import ModelWeights
    from mindfed.server.summary import IterationEnd

logger = logging.getLogger(__name__)
CALLBACK_DRAIN_S = 10.0


class FLServerJob:
    """One FL server of a job.

    Args:
        yaml_config: the job's YAML (the seed's schema; `distributed_cache.address` is required).
        http_server_address: literal IPv4 `ip:port` devices post to (port 0: a free one, see `port`).
        tcp_server_ip: the address of the server-to-server TCP endpoint that the other servers connect to (an IPv4,
            an IPv6 or a host name; a wildcard such as "0.0.0.0" is refused); its port is `tcp_server_port`.
        checkpoint_dir: where recovery checkpoints are read at start and written after each iteration.
        ssl_config: with `enable_ssl: true`, `SSLConfig(server_password, client_password)`: the passwords of
            `ssl.server_cert_path` (HTTPS) and `ssl.client_cert_path` (node transport). Without it such a start fails
            with MindSpore's "The client password's value is empty".

    Raises:
        JobTypeError: a parameter of the wrong type ("Parameter 'http_server_address' should be str, ...").
        JobValueError: an empty str.
        JobConfigError: an unreadable or invalid YAML, or an http_server_address that is not IPv4 `ip:port`.
    """

    def __init__(self, yaml_config: str, http_server_address: str, tcp_server_ip: str = "127.0.0.1",
                 checkpoint_dir: str = "./fl_ckpt/", ssl_config: object = None, *, cache_address: str = "",
                 output_dir: str = ".", heartbeat_ttl_s: int = 10, update_log: bool | str = True,
                 recovery_checkpoints: bool = True, on_stop: str = "fail_iteration", tcp_server_port: int = 0) -> None:
        """The keyword-only arguments are mindfed's own (MindSpore has none): a Redis address overriding the
        YAML's, where metrics/event files go, the heartbeat TTL after which peers take the server for dead,
        where accepted updates are made durable before they are acknowledged (True or "on": Redis; "replica": a
        peer server's copy; False or "off": nothing; docs/cluster.md), whether
        recovery checkpoints are read and written at all, and what a stop does to the running iteration when this
        server holds updates of it: "fail_iteration" (MindSpore's behaviour) or "hand_over" (its peers finish the
        iteration with its logged updates, as after a crash), and the node transport's port (0: a free one)."""
        from mindfed.config import load  # noqa: PLC0415 - keep `import mindfed` light

        check_str("yaml_config", yaml_config)
        check_str("http_server_address", http_server_address)
        check_str("tcp_server_ip", tcp_server_ip)
        check_str("checkpoint_dir", checkpoint_dir)
        self.ssl_config = check_ssl_config(ssl_config)
        self.http_server_address = check_http_server_address(http_server_address)
        self.yaml_config, self.tcp_server_ip, self.checkpoint_dir = yaml_config, tcp_server_ip, checkpoint_dir
        self.output_dir, self.heartbeat_ttl_s = Path(output_dir), heartbeat_ttl_s
        try:
            self.update_log = update_log_mode(update_log)
        except ValueError:
            raise JobValueError(f"Parameter 'update_log' should be a bool or one of {UPDATE_LOG_MODES}, but got "
                                f"{update_log!r}") from None
        self.recovery_checkpoints = recovery_checkpoints
        if on_stop not in ON_STOP_CHOICES:
            raise JobValueError(f"Parameter 'on_stop' should be one of {ON_STOP_CHOICES}, but got {on_stop!r}")
        self.on_stop = on_stop
        if type(tcp_server_port) is not int or not 0 <= tcp_server_port <= 65535:  # noqa: PLR2004
            raise JobValueError(f"Parameter 'tcp_server_port' should be a port in [0, 65535], but got "
                                f"{tcp_server_port!r}")
        self.tcp_server_port = tcp_server_port
        overrides = ssl_path_overrides(self.ssl_config)
        if cache_address:
            overrides["distributed_cache.address"] = cache_address
        try:
            self.config = load(yaml_config, overrides or None)
        except ConfigError as exc:
            raise JobConfigError(str(exc)) from exc
        self.fl_name = self.config.fl_name
        self.callback: Callback | None = None
        self.port: int | None = None
        self._stop = StopSwitch()

    def run(self, feature_map: object = None, callback: Callback | None = None) -> None:
        """Starts the server, calls `after_started`, serves until SIGTERM/SIGINT (or `stop()`), then leaves the
        cluster (refuses new requests, lets running ones finish, removes its entry and heartbeat from Redis) and
        calls `before_stopped`.

        Args:
            feature_map: the initial model, any form of `mindfed.api.feature_map.to_model_weights` (dict, FeatureMap,
                `.ckpt` path, ...; None: LeNet-5(62, 3)). A recovery checkpoint in `checkpoint_dir` and a running
                cluster's model override its values; its `require_aggr` flags are kept.
            callback: a Callback, or None.

        Raises:
            JobTypeError: a callback that is not a Callback, or a feature_map of an unknown type.
            JobValueError: a feature value that is not a non-empty float32 array.
            JobConfigError: a model file that cannot be used, an unsupported YAML mode, no Redis address, an
                address already in use, or with enable_ssl a p12 file, password ("The client password's value is
                empty", "PKCS12_parse failed"), certificate or cipher list that cannot be used.
            CacheError: Redis unreachable for the server's cache wait.
        """
        from mindfed.runtime.logs import configure_logging  # noqa: PLC0415

        if callback is not None and not isinstance(callback, Callback):
            raise JobTypeError("Parameter 'callback' is expected to be instance of Callback when it's not None, but"
                               f" got {type(callback)}")
        self.callback = callback
        configure_logging()
        if is_empty_map(feature_map):
            asyncio.run(self._refuse_empty_model())
        model = to_model_weights(feature_map)
        asyncio.run(self._serve(model))

    def stop(self) -> None:
        """Makes a running `run()` stop cleanly and return (thread-safe)."""
        self._stop.request()

    async def _refuse_empty_model(self) -> None:
        """An empty feature map is refused with the running cluster's count message when there is one (as MindSpore's
        model-info check does), else with our own."""
        from mindfed.cache.connection import target_for  # noqa: PLC0415
        from mindfed.cache.store import CacheStore  # noqa: PLC0415
        from mindfed.server.model_info import empty_model_problem  # noqa: PLC0415

        problem = None
        if not self.config.distributed_cache.is_embedded:
            store = CacheStore.connect(target_for(self.config.distributed_cache, self.config.enable_ssl),
                                       self.fl_name)
            try:
                with contextlib.suppress(CacheError):
                    problem = await empty_model_problem(store)
            finally:
                await store.close()
        if problem:
            raise JobConfigError(problem)
        raise JobValueError("The parameter 'feature_map' holds no feature")

    async def _serve(self, model: ModelWeights) -> None:
        from mindfed.server.node import ServerNode, ServerOptions  # noqa: PLC0415

        stop = self._stop.bind()
        stop_on_signals(stop)
        if self.config.distributed_cache.is_embedded:
            raise JobConfigError(f"{self.fl_name}: distributed_cache.address is empty; FLServerJob needs the "
                                 "job's Redis address")
        ends: asyncio.Queue[IterationEnd] = asyncio.Queue()
        options = ServerOptions(http_server_address=self.http_server_address, config_source=self.yaml_config,
                                tcp_server_ip=self.tcp_server_ip, tcp_server_port=self.tcp_server_port,
                                checkpoint_dir=self.checkpoint_dir if self.recovery_checkpoints else None,
                                output_dir=self.output_dir,
                                heartbeat_ttl_s=self.heartbeat_ttl_s, update_log=self.update_log,
                                stop_fails_iteration=self.on_stop == FAIL_ITERATION,
                                on_iteration_end=ends.put_nowait,
                                ssl_server_password=self.ssl_config.server_password if self.ssl_config else "",
                                ssl_client_password=self.ssl_config.client_password if self.ssl_config else "")
        try:
            node = ServerNode(self.config, model, options)
            await node.start()
        except ConfigError as exc:  # model-info mismatch (spec §13), unsupported mode, address in use, TLS
            raise JobConfigError(str(exc)) from exc
        self.port = node.port
        reload_tls_on_sighup(node.reload_tls)
        # The server's hook only queues: a slow user callback must not hold the iteration switch (safemode).
        callbacks = asyncio.create_task(self._run_iteration_callbacks(ends), name="on-iteration-end")
        try:
            self._call("after_started")
            await stop.wait()
        finally:
            logger.info("server stopping")
            await node.stop()
            with contextlib.suppress(TimeoutError):  # let queued callbacks run, as MindSpore's come before stop
                await asyncio.wait_for(ends.join(), CALLBACK_DRAIN_S)
            callbacks.cancel()
            await asyncio.gather(callbacks, return_exceptions=True)
            self._call("before_stopped")

    def _call(self, name: str) -> None:
        logger.info("%s callback", name.replace("_", " "))
        if self.callback is not None:
            try:
                getattr(self.callback, name)()
            except Exception as exc:  # noqa: BLE001 - a user callback must not take the server down (as MindSpore)
                logger.warning("Catch exception when invoke callback %s: %s", name, exc)

    async def _run_iteration_callbacks(self, ends: asyncio.Queue[IterationEnd]) -> None:
        while True:
            end = await ends.get()
            try:
                await self._on_iteration_end(end)
            finally:
                ends.task_done()

    async def _on_iteration_end(self, end: IterationEnd) -> None:
        logger.info("on iteration end callback, iteration %d", end.iteration_num)
        if self.callback is None:
            return
        context = CallbackContext(
            feature_map=FeatureMap.from_weights(end.feature_map) if end.feature_map is not None else FeatureMap(),
            checkpoint_file=end.checkpoint_file or "", fl_name=end.fl_name, instance_name=end.instance_name,
            iteration_num=end.iteration_num, iteration_valid=end.iteration_valid,
            iteration_result=end.iteration_result)
        try:
            # off the loop: a callback may save files or train; the server keeps serving meanwhile
            await asyncio.to_thread(self.callback.on_iteration_end, context)
        except Exception as exc:  # noqa: BLE001 - as above
            logger.warning("Catch exception when invoke callback on iteration end: %s", exc)
