"""Start N server processes on consecutive HTTP ports (the seed's run_server.py), plus an embedded Redis when the YAML
names no cache address. Each process logs to `logs/server_{port}/server.log`. Only processes started here are stopped,
by PID.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mindfed.address import Address
from mindfed.cache.connection import PASSWORD_ENV
from mindfed.cache.embedded import EmbeddedRedis
from mindfed.cache.redis_url import without_password
from mindfed.config import FLConfig, load
from mindfed.server.capabilities import check_supported

logger = logging.getLogger(__name__)
STAGGER_S = 0.3  # the seed's launcher starts servers 0.3 s apart


@dataclass(slots=True)
class ServerLaunch:
    """What `run_server.py` / `mindfed server` were asked to start.

    `process_args` are the other flags of each process (`server_process.forwarded_argv`); the launcher sets
    --yaml_config, --http_server_address, --cache_address and --tcp_server_port itself (a fixed node port: consecutive
    ones from it, as the HTTP ports).
    """

    yaml_config: str
    http_server_address: str
    local_server_num: int = 1
    log_dir: Path = Path("logs")
    process_args: Sequence[str] = ()
    cache_address: str = ""
    detach: bool = False
    tcp_server_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    redis: EmbeddedRedis | None = None

    def http_addresses(self) -> list[str]:
        return [str(address) for address in self._addresses()]

    def _addresses(self) -> list[Address]:
        first = Address.parse(self.http_server_address)
        return [first.with_port(first.port + i) for i in range(self.local_server_num)]

    def start(self, config: FLConfig | None = None) -> None:
        """Starts the servers (and an embedded Redis if the YAML names none). `config`: the YAML as the caller has
        already loaded and checked it; None loads and checks it here, to fail fast in the launcher."""
        if config is None:
            config = load(self.yaml_config)
            check_supported(config, self.yaml_config)
        addresses = self._addresses()  # a bad --http_server_address must not leave an embedded Redis behind
        if not self.cache_address and config.distributed_cache.is_embedded:
            self.redis = EmbeddedRedis().start()
            self.cache_address = self.redis.address_for(config.enable_ssl)
            logger.info("embedded redis-server pid %s at %s", self.redis.pid, self.cache_address)
        for i, address in enumerate(addresses):
            if i:
                time.sleep(STAGGER_S)
            self.processes.append(self._spawn(address, self.tcp_server_port + i if self.tcp_server_port else 0))

    def _spawn(self, address: Address, tcp_port: int = 0) -> subprocess.Popen[bytes]:
        log_dir = self.log_dir / f"server_{address.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "mindfed.cli.server_process", "--yaml_config", self.yaml_config,
               "--http_server_address", str(address), "--tcp_server_port", str(tcp_port), *self.process_args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.cache_address:
            cmd += ["--cache_address", cache_address_for_child(self.cache_address, env)]
        with (log_dir / "server.log").open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=self.detach, env=env)
        logger.info("server pid %d on http://%s (log %s)", proc.pid, address, log_dir / "server.log")
        return proc

    def wait(self) -> int:
        """Block until every server exits; returns the first non-zero exit code, or 0."""
        codes = [proc.wait() for proc in self.processes]
        return next((c for c in codes if c), 0)

    def poll_failed(self) -> list[tuple[int, int]]:
        """(pid, exit code) of servers that have already exited."""
        return [(p.pid, p.returncode) for p in self.processes if p.poll() is not None]

    def reload_tls(self) -> None:
        """Passes SIGHUP on to every running server: each loads its TLS files again (certificate rotation)."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGHUP)

    def stop(self, timeout_s: float = 15.0) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout_s
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("server pid %d did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.wait()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


@dataclass(slots=True)
class SchedulerLaunch:
    """A `mindfed scheduler` process of the job in `yaml_config`, logging to `log_dir/scheduler/scheduler.log`.

    Args:
        yaml_config: the job's YAML (its `fl_name`).
        manage_address: `ip:port` of the management REST API (give a real port: its URL is derived from it).
        cache_address: the servers' Redis `ip:port`.
        log_dir: the parent of the `scheduler/` log directory.
    """

    yaml_config: str
    manage_address: str
    cache_address: str
    log_dir: Path = Path("logs")
    process: subprocess.Popen[bytes] | None = None
    scheme: str = "http"  # "https" when the YAML says enable_ssl

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.manage_address}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "scheduler" / "scheduler.log"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "mindfed.cli.main", "scheduler", "--yaml_config", self.yaml_config,
               "--scheduler_manage_address", self.manage_address, "--cache_address",
               cache_address_for_child(self.cache_address, env)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env)
        logger.info("scheduler pid %d on %s (log %s)", self.process.pid, self.url, self.log_path)

    def exit_code(self) -> int | None:
        """The scheduler's exit code once it has exited, else None (also before `start`)."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, then wait (SIGKILL after `timeout_s`)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("scheduler pid %d did not stop in time; killing it", proc.pid)
            proc.kill()
            proc.wait()


def cache_address_for_child(address: str, env: dict[str, str]) -> str:
    """`address` for a child's command line, which anyone on the host can read in /proc: a URL's password moves into
    the child's environment (`MINDFED_REDIS_PASSWORD`, which a URL without one takes), never into its argv."""
    bare, password = without_password(address)
    if password:
        env[PASSWORD_ENV] = password
    return bare
