"""One scheduler: the management app on `manage_address`, over the job's Redis (spec §1.1)."""

from __future__ import annotations

import logging
import os

from aiohttp import web

from mindfed.cache.connection import target_for
from mindfed.cache.scheduler_ops import SchedulerCache
from mindfed.cache.store import CacheStore
from mindfed.config import FLConfig
from mindfed.errors import CacheAccessError, ConfigError
from mindfed.runtime.until_signalled import run_until_signalled
from mindfed.scheduler.address import validate_manage_address
from mindfed.scheduler.metrics import SchedulerMetrics
from mindfed.scheduler.operator_auth import CA_FILE_ENV, OperatorAuth, request_client_certificates
from mindfed.scheduler.overview import DashboardOverview
from mindfed.scheduler.rest import ROUTES, make_app
from mindfed.scheduler.service import ClusterService
from mindfed.tls.rotation import TlsTarget, TlsWatcher
from mindfed.tls.server_context import ServerTls

logger = logging.getLogger(__name__)


class SchedulerApp:
    """The scheduler's HTTP server. `await start()`, then `await stop()`; `port` is the bound port.

    Args:
        config: the job's config; only `fl_name` and `distributed_cache.address` are used.
        manage_address: `ip:port` to listen on (port 0: a free one).
        ssl_server_password: with enable_ssl, the password of `ssl.server_cert_path` (HTTPS, as MindSpore's
            scheduler); never logged.
        tls_poll_s: how often replaced TLS files (the p12, the CA file, the operators' client CA) are looked for;
            SIGHUP (`reload_tls`) reloads them at once.

    Raises:
        TypeError: `manage_address` is not a str.
        ConfigError: an invalid `manage_address`, no Redis address to share with the servers, a bad operator
            credential setting (`operator_auth`), or (enable_ssl) a p12 file, password, certificate or cipher list
            that cannot be used.
    """

    def __init__(self, config: FLConfig, manage_address: object, *, ssl_server_password: str = "",
                 tls_poll_s: float = 5.0) -> None:
        self._host, self._port = validate_manage_address(manage_address)
        cache = config.distributed_cache
        if cache.is_embedded:
            raise ConfigError("distributed_cache.address is empty: the scheduler must use the servers' Redis. Set "
                              "distributed_cache.address, or pass --cache_address ip:port (the address `mindfed "
                              "server` logs for its embedded redis-server)")
        self.config = config
        self._runner: web.AppRunner | None = None
        self._store: CacheStore | None = None
        self.metrics = SchedulerMetrics(frozenset(ROUTES))  # /metrics, /healthz, /readyz
        # --- TLS (enable_ssl): HTTPS with the servers' certificate, rotated in place
        self.tls = ServerTls(config.ssl, ssl_server_password, tls_poll_s) if config.enable_ssl else None
        self._auth = self._operator_auth()
        self.tls_watcher = self._watcher(tls_poll_s)

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        """`host:port` the scheduler listens on (IPv6 hosts in brackets)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self._port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    async def start(self) -> None:
        cfg = self.config
        store = CacheStore.connect(target_for(cfg.distributed_cache, cfg.enable_ssl), cfg.fl_name)
        self._store = store
        try:
            problem = await store.probe()  # a refused login or TLS handshake stops the start, naming the cause
        except CacheAccessError:
            await self.stop()
            raise
        if problem:
            logger.warning("distributed cache %s is not reachable yet; requests answer the cache error until it is",
                           store.address)
        self.metrics.store = store
        cache = SchedulerCache(store)
        overview = DashboardOverview(cache, lambda: self.address)
        runner = web.AppRunner(make_app(ClusterService(cache), self._auth, self.metrics, overview),
                               access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True,
                           ssl_context=self.tls.context if self.tls else None)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise ConfigError(f"Failed to start scheduler http server, server address: {self._host}:{self._port} "
                              f"({exc})") from exc
        self._port = int(runner.addresses[0][1])
        if self.tls_watcher is not None:
            self.tls_watcher.start()
        logger.info("scheduler of job %s serving %s (dashboard %s/dashboard/), cache %s", cfg.fl_name, self.url,
                    self.url, store.address)

    def _operator_auth(self) -> OperatorAuth:
        """Operator credentials from the environment (`operator_auth`); a CA for client certificates needs HTTPS."""
        auth = OperatorAuth.from_env(os.environ)
        # --- operator mTLS: the HTTPS context (enable_ssl) asks for client certificates of the operators' CA; over
        # plain HTTP a client-certificate CA could never be used, so it is refused.
        if auth.client_ca_file:
            if self.tls is None:
                raise ConfigError(f"{CA_FILE_ENV} is set but the scheduler serves plain HTTP: client certificates "
                                  "need HTTPS (enable_ssl: true)")
            request_client_certificates(self.tls.context, auth)
        # --- end operator mTLS
        if auth.enabled:
            logger.info("management routes need the operator's credential%s",
                        "; /state and the dashboard's overview are public" if auth.state_public else "")
        return auth

    def _watcher(self, poll_s: float) -> TlsWatcher | None:
        """Rotation (enable_ssl): the HTTPS certificate and, with operator mTLS, the operators' client CA."""
        if self.tls is None:
            return None
        tls, auth = self.tls, self._auth
        targets = [TlsTarget("HTTPS", (self.config.ssl.server_cert_path, self.config.ssl.ca_cert_path), tls.reload)]
        if auth.client_ca_file:
            def reload_operator_ca() -> str:
                # OpenSSL's store only grows: a CA added to the file is trusted from now on; one removed from it stays
                # trusted until the scheduler restarts
                request_client_certificates(tls.context, auth)
                return f"the operators' client CA file {auth.client_ca_file} (added to the trusted ones)"

            targets.append(TlsTarget("operator client CA", (auth.client_ca_file,), reload_operator_ca))
        return TlsWatcher(targets, poll_s, daily=tls.check_expiry)

    def reload_tls(self) -> None:
        """SIGHUP: load the TLS files again for new connections (see mindfed.tls.rotation)."""
        if self.tls_watcher is None:
            logger.info("SIGHUP: no TLS material to reload (enable_ssl is false)")
            return
        self.tls_watcher.request_reload()

    async def stop(self) -> None:
        if self.tls_watcher is not None:
            await self.tls_watcher.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        store, self._store = self._store, None
        if store is not None:
            await store.close()


async def run_scheduler(config: FLConfig, manage_address: object) -> None:
    """Serve until SIGINT/SIGTERM (the main loop of MindSpore's scheduler just waits for them)."""
    await run_until_signalled(SchedulerApp(config, manage_address))
