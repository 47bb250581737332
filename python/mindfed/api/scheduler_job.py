"""MindSpore Federated's `FlSchedulerJob` (spec §1.1) over `mindfed.scheduler.SchedulerApp`."""

from __future__ import annotations

import asyncio
import logging

from mindfed.api.errors import JobConfigError
from mindfed.api.params import check_str
from mindfed.api.signals import StopSwitch, reload_tls_on_sighup, stop_on_signals
from mindfed.api.ssl_config import check_ssl_config, ssl_path_overrides
from mindfed.errors import ConfigError

logger = logging.getLogger(__name__)


class FlSchedulerJob:
    """The management REST API of one job (`/state`, `/newInstance`, `/queryInstance`, `/enableFLS`,
    `/disableFLS`).

    Args:
        yaml_config: the job's YAML; `fl_name` and `distributed_cache.address` are used.
        manage_address: `ip:port` to serve on (port 0: a free one).
        ssl_config: with `enable_ssl: true`, `SSLConfig(server_password, ...)`: the password of
            `ssl.server_cert_path`, whose certificate the scheduler's HTTPS presents.

    Raises:
        JobTypeError: a parameter of the wrong type ("Parameter 'manage_address' should be str, but actually ...").
        JobValueError: an empty str.
        JobConfigError: an unreadable or invalid YAML.
    """

    def __init__(self, yaml_config: str, manage_address: str, ssl_config: object = None, *,
                 cache_address: str = "", ssl_server_password: str = "") -> None:
        """`cache_address` and `ssl_server_password` are mindfed's own: a Redis ip:port overriding the YAML's (as
        `mindfed server` has), and the p12 password when no `ssl_config` gives one (`mindfed scheduler` reads it
        from MINDFED_SSL_SERVER_PASSWORD)."""
        from mindfed.config import load  # noqa: PLC0415 - keep `import mindfed` light

        check_str("yaml_config", yaml_config)
        check_str("manage_address", manage_address)
        self.ssl_config = check_ssl_config(ssl_config)
        self._ssl_server_password = self.ssl_config.server_password if self.ssl_config else ssl_server_password
        self.yaml_config, self.manage_address = yaml_config, manage_address
        overrides = ssl_path_overrides(self.ssl_config)
        if cache_address:
            overrides["distributed_cache.address"] = cache_address
        try:
            self.config = load(yaml_config, overrides or None)
        except ConfigError as exc:
            raise JobConfigError(str(exc)) from exc
        self._stop = StopSwitch()
        self.port: int | None = None

    def run(self) -> None:
        """Serves until SIGTERM/SIGINT (or `stop()`), then closes the HTTP server and the Redis connections.

        Raises:
            JobConfigError: an invalid `manage_address` ("Failed to start scheduler http server, invalid server
                address: ..."), a port in use, no `distributed_cache.address`, or with `enable_ssl: true` a p12 file,
                password ("The client password's value is empty", "PKCS12_parse failed"), certificate or cipher
                list that cannot be used.
        """
        from mindfed.runtime.logs import configure_logging  # noqa: PLC0415
        from mindfed.scheduler.address import validate_manage_address  # noqa: PLC0415

        try:
            validate_manage_address(self.manage_address)  # before the loop: the same text wherever run() is called
        except ConfigError as exc:
            raise JobConfigError(str(exc)) from exc
        configure_logging()
        asyncio.run(self._serve())

    def stop(self) -> None:
        """Makes a running `run()` return (thread-safe)."""
        self._stop.request()

    async def _serve(self) -> None:
        from mindfed.scheduler import SchedulerApp  # noqa: PLC0415

        stop = self._stop.bind()
        stop_on_signals(stop)
        try:
            app = SchedulerApp(self.config, self.manage_address, ssl_server_password=self._ssl_server_password)
            await app.start()
        except ConfigError as exc:
            raise JobConfigError(str(exc)) from exc
        self.port = app.port
        reload_tls_on_sighup(app.reload_tls)
        try:
            await stop.wait()
        finally:
            logger.info("scheduler stopping")
            await app.stop()
