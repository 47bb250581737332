"""One FL server process: joins the job in Redis, serves devices over HTTP, runs the iteration state machine.

Start-up follows MindSpore's order where it matters (spec §1.2): sync with the cache (instance, iteration, hyper
parameters), then the model, then the HTTP server, then registration. All per-iteration and per-client state is in
Redis, so this process is replaceable: a restarted server resumes from Redis, or from its newest recovery checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from mindfed.address import Address, AddressError
from mindfed.aggregation.accumulator import IterationAccumulator
from mindfed.aggregation.rules import AggregationRule, with_control_variates
from mindfed.cache.connection import target_for
from mindfed.cache.durability import DurableUpdates, read_model
from mindfed.cache.store import FINISHED, RUNNING, CacheStore, InstanceStatus, Ttl
from mindfed.config import FLConfig
from mindfed.config.enums import EncryptType
from mindfed.config.loader import hyper_params
from mindfed.errors import CacheError, ConfigError
from mindfed.model.recovery import RecoveryCheckpoints
from mindfed.model.weights import ModelWeights
from mindfed.net.advertise import advertised_tcp_host
from mindfed.net.endpoint import TcpEndpoint
from mindfed.net.tls import node_tls_target
from mindfed.privacy.accountant import last_iteration
from mindfed.server.admission import MIN_BYTES as ADMISSION_MIN_BYTES
from mindfed.server.admission import AdmissionGate
from mindfed.server.capabilities import check_supported
from mindfed.server.checkpointer import checkpoint_once, run_checkpoints
from mindfed.server.http_api import make_app
from mindfed.server.hyper_params import adopt
from mindfed.server.instance import InstanceLifecycle
from mindfed.server.iteration import IterationDriver
from mindfed.server.metrics import ServerMetrics
from mindfed.server.model_info import declare_or_check
from mindfed.server.model_store import ModelStore
from mindfed.server.partials import decode_model, encode_model
from mindfed.server.peer_trust import check_peers_accept_us, open_peer_endpoint
from mindfed.server.peers import serve_peers
from mindfed.server.phase import IterationPhase
from mindfed.server.pki_check import load_device_pki
from mindfed.server.read_pacing import bound_receive_buffer, paced, read_bufsize
from mindfed.server.replicas import PRESSURE_MIN_BYTES, Replicator
from mindfed.server.ring_upload import accumulator_sizes
from mindfed.server.secagg_prime import cluster_prime
from mindfed.server.state import ServerState, make_instance_name, make_node_id
from mindfed.server.summary import IterationEndHook, SummaryWriter
from mindfed.server.takeover import abandon_on_stop
from mindfed.server.update_log import update_log_mode
from mindfed.summary.data_rate import DataRateRecorder
from mindfed.tls.rotation import TlsTarget, TlsWatcher
from mindfed.tls.server_context import ServerTls

logger = logging.getLogger(__name__)

# Room for names, eval items and FlatBuffers overhead on top of the model's own bytes.
BODY_SLACK_BYTES = 16 << 20
UPDATE_HEADROOM_BYTES = 1 << 20  # what an update body carries beside its tensors, generously (names, tables, fl_id)
DATA_RATE_FLUSH_S = 60.0
COMBINE_ON_STOP_S = 10.0
COMBINE_TASK = "complete-"  # name prefix of the tasks that combine an iteration (a stop lets them finish)
LISTEN_BACKLOG = 1024  # the least accept queue asked for; client.connection_num raises it


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """How to run one server process (the seed's run_server.py flags and a few of ours)."""

    http_server_address: str
    config_source: str = "config"  # the YAML's path, which the capability check's error names (as `config check`)
    tcp_server_ip: str = "127.0.0.1"  # advertised to peers (net/advertise.py); "": the first non-loopback IPv4
    tcp_server_port: int = 0  # the node transport's port; 0: a free one
    checkpoint_dir: str | None = "./fl_ckpt/"
    output_dir: Path = Path()
    tick_s: float = 0.1
    cache_wait_s: float = 30.0
    heartbeat_ttl_s: int = 10
    update_log: bool | str = "on"  # server/update_log.py (a bool: on / off)
    # MindSpore's rule for a server stopped while it holds updates of the running iteration: the iteration fails and
    # the cluster moves on at once. False hands its (durable) updates to the peers instead, as after a crash.
    stop_fails_iteration: bool = True
    # Awaited on the event loop by the summary writer, under its lease: must not block it (FLServerJob only queues).
    on_iteration_end: IterationEndHook | None = None
    max_body_bytes: int | None = None
    # --- TLS (enable_ssl): the p12 passwords, from SSLConfig or MINDFED_SSL_*_PASSWORD; never in a repr or a log.
    ssl_server_password: str = field(default="", repr=False)  # ssl.server_cert_path: HTTPS (and node TCP server)
    ssl_client_password: str = field(default="", repr=False)  # ssl.client_cert_path: node TCP client
    tls_poll_s: float = 5.0  # how often replaced ssl.* files (server/client p12, CA, CRL) are looked for (rotation)


def parse_address(address: str) -> Address:
    """A server's `http_server_address` (port 0: a free one)."""
    try:
        return Address.parse(address)
    except AddressError as exc:
        raise ConfigError(f"http_server_address: {exc}") from None


def scaffold_model(config: FLConfig, model: ModelWeights) -> ModelWeights:
    """Under Scaffold the model carries a zero control variate beside every aggregated tensor (spec §1.2)."""
    if not AggregationRule.of(config).scaffold:
        return model
    tensors, flags = with_control_variates(dict(model.items()), dict(model.require_aggr))
    return model if len(tensors) == len(model) else ModelWeights(tensors, flags)


class ServerNode:
    """A running FL server. `await start()`, then `await stop()`; `port` is the bound HTTP port."""

    def __init__(self, config: FLConfig, initial_model: ModelWeights, options: ServerOptions) -> None:
        check_supported(config, options.config_source)
        self._device_pki = load_device_pki(config)  # pki_verify: a missing root CA fails the start, not a device
        self.config, self.options = config, options
        # HTTPS material first, as MindSpore's SSLHTTP: a bad p12, password or cipher refuses the start
        self._tls = ServerTls(config.ssl, options.ssl_server_password, options.tls_poll_s) if config.enable_ssl \
            else None
        bind = parse_address(options.http_server_address)
        self._host, self._port = bind.host, bind.port
        # needed once, to start from; held after that, it is a whole model's memory kept for nothing
        self._initial_model: ModelWeights | None = scaffold_model(config, initial_model)
        self._checkpoints = (RecoveryCheckpoints(options.checkpoint_dir, config.fl_name)
                             if options.checkpoint_dir else None)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._backlog = LISTEN_BACKLOG
        self._tasks: set[asyncio.Task[None]] = set()
        self.state: ServerState | None = None
        self._driver: IterationDriver | None = None
        self._rates: DataRateRecorder | None = None
        self._peers: TcpEndpoint | None = None
        self._tls_watcher: TlsWatcher | None = None
        self.metrics: ServerMetrics | None = None  # set once the HTTP app is built
        self.gate: AdmissionGate | None = None  # the Redis rounds' admission gate, set with the app

    @property
    def port(self) -> int:
        return self._port

    @property
    def scheme(self) -> str:
        """"https" with enable_ssl, else "http"."""
        return "https" if self._tls is not None else "http"

    @property
    def tls(self) -> ServerTls | None:
        """The live TLS context and its certificate watcher (None without enable_ssl)."""
        return self._tls

    @property
    def tls_watcher(self) -> TlsWatcher | None:
        """The rotation watcher over every `ssl.*` file (None without enable_ssl, or before `start()`)."""
        return self._tls_watcher

    def reload_tls(self) -> None:
        """SIGHUP: load every TLS file again (HTTPS and the node transport) for new connections; open ones and the
        running round go on. A file that cannot be used is logged and the current material kept."""
        if self._tls_watcher is None:
            logger.info("SIGHUP: %s", "the server is not started yet" if self.config.enable_ssl else
                        "no TLS material to reload (enable_ssl is false)")
            return
        self._tls_watcher.request_reload()

    async def start(self) -> None:
        cfg, opts = self.config, self.options
        ttl = Ttl.from_window(cfg.round.global_iteration_time_window)
        tcp_host = advertised_tcp_host(opts.tcp_server_ip)  # a wildcard or unresolvable name: ConfigError
        sock = self._listen()
        try:
            peers = self._peers = open_peer_endpoint(cfg, tcp_host, opts.ssl_server_password,
                                                     opts.ssl_client_password, opts.config_source,
                                                     port=opts.tcp_server_port)
        except BaseException:
            sock.close()
            raise
        tcp_address = str(Address(tcp_host, peers.port))
        node_id = make_node_id(tcp_address)
        store = CacheStore.connect(target_for(cfg.distributed_cache, cfg.enable_ssl), cfg.fl_name)
        try:
            await self._start(store, sock, peers, node_id, tcp_address, ttl)
        except BaseException:
            # a refused start (bad model, Redis away) leaves nothing open behind it
            sock.close()
            self._peers = None
            await peers.aclose()
            await store.close()
            raise

    async def _start(self, store: CacheStore, sock: socket.socket, peers: TcpEndpoint, node_id: str,
                     tcp_address: str, ttl: Ttl) -> None:
        opts = self.options
        await self._wait_for_cache(store)
        if shortfall := await store.replica_shortfall():
            logger.warning("%s", shortfall)
        instance = await store.claim_instance(make_instance_name(), ttl)
        # One server joins at a time (MindSpore's registration lock): it reads a settled instance, then registers.
        await store.acquire_join_lock(instance, node_id, self.options.cache_wait_s)
        try:
            cfg, status, model = await self._join(store, instance, ttl)
            state = ServerState(config=cfg, store=store, ttl=ttl, node_id=node_id, tcp_address=tcp_address,
                                models=ModelStore(), instance=instance, iteration=status.iteration,
                                running_state=status.running_state, heartbeat_ttl_s=opts.heartbeat_ttl_s,
                                update_log=update_log_mode(opts.update_log),
                                peers=peers, accumulator=IterationAccumulator(accumulator_sizes(cfg, model)))
            state.models.reset(status.iteration - 1, model)
            if state.update_log == "replica":  # a peer holds at most about 4 updates per origin (server/replicas.py)
                state.replicator = Replicator(peers, node_id, tcp_address, max(PRESSURE_MIN_BYTES, 4 * model.nbytes),
                                              lambda: store.alive_servers(state.instance))
            state.pki = self._device_pki
            if cfg.encrypt.encrypt_train_type == EncryptType.PW_ENCRYPT:
                state.pw_prime = await cluster_prime(store)
            self.state = state
            serve_peers(peers, state)
            if cfg.enable_ssl:  # mutual TLS: a server whose certificate the cluster refuses does not join
                await check_peers_accept_us(peers, await store.alive_servers(instance))
            await self._serve_http(state, sock, model)
            await store.register_server(instance, node_id, tcp_address, opts.heartbeat_ttl_s)
        finally:
            await store.release_join_lock(instance, node_id)
        state.phase.enter(IterationPhase.RUNNING, state.iteration)
        self._spawn(self._driver.run(), "iteration-driver")  # type: ignore[union-attr]
        self._spawn(run_checkpoints(state), "partial-checkpoints")
        logger.info("server %s serving %s://%s:%d%s, instance %s, iteration %d", node_id, self.scheme, self._host,
                    self._port, state.config.client.http_url_prefix or "/", instance, state.iteration)

    async def _join(self, store: CacheStore, instance: str, ttl: Ttl) -> tuple[FLConfig, InstanceStatus,
                                                                              ModelWeights]:
        """The instance's status, the cluster's hyper-parameters and its current model (spec §2.10, §6.2)."""
        cfg = self.config
        model, first_iteration = self._starting_model()
        await declare_or_check(store, model, ttl)
        status = await store.init_status(instance, first_iteration,
                                         FINISHED if first_iteration > last_iteration(cfg) else RUNNING, ttl)
        cached = await store.publish_hyper_params(instance, hyper_params(cfg), ttl)
        if cached != hyper_params(cfg):
            logger.warning("hyper parameters in the cache differ from this YAML; adopting the cluster's")
            cfg = adopt(cfg, cached, hyper_params(cfg))
        published = await read_model(store, instance)
        if published is None:  # the first server of the instance: later ones start from its model (spec §13)
            await DurableUpdates(store, instance, status.iteration, ttl).publish_model(
                status.iteration - 1, await asyncio.to_thread(encode_model, model))
        elif published[0] <= status.iteration - 1:
            # a running cluster's model wins over a file or checkpoint; failed iterations since carried it forward
            model = decode_model(published[1])
            logger.info("adopted the cluster's model of iteration %d", published[0])
        return cfg, status, model

    async def _serve_http(self, state: ServerState, sock: socket.socket, model: ModelWeights) -> None:
        opts = self.options
        rate_dir = state.config.summary.data_rate_dir and str(opts.output_dir / state.config.summary.data_rate_dir)
        self._rates = rates = DataRateRecorder(rate_dir, state.tcp_address)
        max_body = opts.max_body_bytes or (model.nbytes + BODY_SLACK_BYTES)
        # Update bodies in memory at once: two of a large model's. A body is the model's bytes plus its FlatBuffer's
        # names and tables, so 2 x model alone let one in at a time: the same ingest on 2 cores (0.68-0.75 of the
        # sink either way) and 50 MB less at 8 x 10M's peak, but one device on a slow link would then hold every
        # other upload back for as long as its own takes.
        self.gate = gate = AdmissionGate(max_bytes=max(ADMISSION_MIN_BYTES, 2 * (model.nbytes + UPDATE_HEADROOM_BYTES)))
        self.metrics = metrics = ServerMetrics(state)  # /metrics, /healthz, /readyz beside the rounds
        self._runner = web.AppRunner(make_app(state, state.stats, rates, max_body, gate=gate, metrics=metrics),
                                     access_log=None, handle_signals=False,
                                     read_bufsize=read_bufsize(state.config.client.receive_buffer_bytes))
        await self._runner.setup()
        # Our own listener rather than aiohttp's SockSite: that one listens again with a backlog of 128 (undoing
        # _listen's), and ours starts every connection with small reads; a waiting request's body stays on the
        # device (read_pacing.py).
        assert self._runner.server is not None
        self._listener = await asyncio.get_running_loop().create_server(
            paced(self._runner.server), sock=sock, ssl=self._tls.context if self._tls else None,
            backlog=self._backlog)
        if self._tls is not None:  # rotation of every ssl.* file, and the daily expiry warning
            tls, ssl_cfg = self._tls, self.config.ssl
            targets = [TlsTarget("HTTPS", (ssl_cfg.server_cert_path, ssl_cfg.ca_cert_path), tls.reload)]
            if self._peers is not None:
                targets.append(node_tls_target(self._peers, ssl_cfg, opts.ssl_server_password,
                                               opts.ssl_client_password))
            self._tls_watcher = TlsWatcher(targets, opts.tls_poll_s, daily=tls.check_expiry)
            self._spawn(self._tls_watcher.watch(), "tls-watch")
        summary = SummaryWriter(state, opts.output_dir, self._checkpoints, opts.on_iteration_end,
                                on_result=metrics.iteration_ended)
        instance = InstanceLifecycle(state, summary, state.stats, base_config=self.config)
        self._driver = driver = IterationDriver(state, summary, state.stats, instance, opts.tick_s)
        state.on_all_folded = lambda it: self._spawn(driver.complete(it), f"{COMBINE_TASK}{it}")
        self._spawn(self._flush_rates(rates), "data-rate")

    def _starting_model(self) -> tuple[ModelWeights, int]:
        """The newest loadable recovery checkpoint wins over the initial model (spec §6.3). Once per node: the node
        lets go of the initial model here."""
        initial, self._initial_model = self._initial_model, None
        if initial is None:
            raise RuntimeError("a ServerNode starts once")
        if self._checkpoints is not None:
            recovered = self._checkpoints.latest(require_aggr=initial.require_aggr)
            if recovered is not None:
                iteration, model = recovered
                logger.info("resuming from the recovery checkpoint of iteration %d", iteration)
                return model, iteration + 1
        return initial, 1

    async def _wait_for_cache(self, store: CacheStore) -> None:
        deadline = time.monotonic() + self.options.cache_wait_s
        while problem := await store.probe():  # a refused login or TLS handshake raises at once
            if time.monotonic() > deadline:
                raise CacheError(f"distributed cache {store.address} unreachable for {self.options.cache_wait_s} s: "
                                 f"{problem}")
            logger.warning("waiting for the distributed cache at %s", store.address)
            await asyncio.sleep(1.0)

    def _listen(self) -> socket.socket:
        """Bind before building the app, so the real port (when 0 was asked for) names this node."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound_receive_buffer(sock, self.config.client.receive_buffer_bytes)  # inherited by every connection
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {self._host}:{self._port}: {exc}") from exc
        # Devices connect in bursts (10,000 at an iteration's start): a short accept queue drops their SYNs and each
        # retransmit costs a device a second or more. The kernel caps the queue at net.core.somaxconn.
        self._backlog = max(LISTEN_BACKLOG, self.config.client.connection_num)
        sock.listen(self._backlog)
        sock.setblocking(False)
        self._port = int(sock.getsockname()[1])
        return sock

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_rates(self, rates: DataRateRecorder) -> None:
        if not rates.enabled:
            return
        while True:
            await asyncio.sleep(DATA_RATE_FLUSH_S)
            await asyncio.to_thread(rates.flush)

    async def stop(self) -> None:
        """Leave the cluster cleanly (spec §1.2): refuse new requests, let running ones finish, unregister."""
        state = self.state
        if state is not None:
            state.stopping = True
            state.iteration_watch.notify()  # held getModel/getResult answers go out now
            deadline = time.monotonic() + 10.0
            while state.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            combining = [t for t in self._tasks if t.get_name().startswith(COMBINE_TASK) and not t.done()]
            if combining:  # an aggregation under way finishes its iteration: let it (bounded)
                await asyncio.wait(combining, timeout=COMBINE_ON_STOP_S)
            if self.options.stop_fails_iteration and self._driver is not None:
                try:
                    await abandon_on_stop(state, self._driver.tick)
                except Exception:  # the server must still leave the cluster cleanly
                    logger.exception("stop: failing the running iteration did not complete")
            elif state.accumulator.tags and not state.safemode:
                await checkpoint_once(state)  # hand over: the peers take our updates from Redis, all of them
        if self._driver is not None:
            self._driver.stop()
            running = [t for t in self._tasks if t.get_name() == "iteration-driver"]
            if running:
                await asyncio.wait(running, timeout=5.0)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(list(self._tasks), timeout=10.0)
            for task in stuck:
                logger.error("task %s did not stop within 10 s", task.get_name())
        if state is not None:
            with contextlib.suppress(CacheError):
                await state.store.unregister_server(state.instance, state.node_id)
            await state.store.close()
        if self._rates is not None and self._rates.enabled:
            await asyncio.to_thread(self._rates.flush, include_current=True)
        if self._listener is not None:
            self._listener.close()  # no new connections; the runner's cleanup ends the open ones
        if self._runner is not None:
            await self._runner.cleanup()
        if self._peers is not None:
            await self._peers.aclose()
