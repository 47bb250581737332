"""Certificate rotation without downtime: one watcher per process over every TLS file it uses.

A `TlsWatcher` is given the process's `TlsTarget`s — the HTTPS context (`ServerTls`), the node-to-node transport
(`TcpEndpoint.reload_tls`), the scheduler's operator client CA — each with the files it reads. Every `poll_s` it
compares each file's (mtime, size, inode) with the last look; a target whose file changed is loaded afresh. SIGHUP
(`request_reload`, wired by `runtime.until_signalled`) reloads every target whether or not a file changed.

A reload affects new connections only: established HTTPS and node connections, and the rounds running over them,
go on with the material they were set up with. A replacement that does not load (half written, wrong password,
expired, not PEM) is logged as a warning and the current material stays in use; the file is tried again once it
changes again (a writer finishing it) or on the next SIGHUP. Log lines name the files, subjects and serials: never a
password or a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mindfed.tls.expiry import CHECK_EVERY_S

logger = logging.getLogger(__name__)

POLL_S = 5.0
Stamp = tuple[int, int, int] | None


def stamp(path: str) -> Stamp:
    """(mtime_ns, size, inode) of `path`; None when it cannot be seen (missing, mid-rename)."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


@dataclass(frozen=True)
class TlsTarget:
    """Something holding TLS material that can be loaded again.

    Attributes:
        name: what it is, for the log ("HTTPS", "node transport").
        files: the paths it reads ("" entries are ignored).
        reload: loads every file afresh and makes it live for new connections; returns what is live now (no
            secret); raises (ConfigError, NetworkError, OSError, ...) when the material cannot be used, leaving the
            current material in place.
    """

    name: str
    files: tuple[str, ...]
    reload: Callable[[], str]


class TlsWatcher:
    """Polls the files of `targets` every `poll_s` and reloads the targets whose files changed.

    Args:
        targets: what to reload.
        poll_s: seconds between looks.
        daily: called once a day by `watch()` (the certificates' expiry warning).
    """

    def __init__(self, targets: Iterable[TlsTarget], poll_s: float = POLL_S,
                 daily: Callable[[], object] | None = None) -> None:
        self.targets = [TlsTarget(t.name, tuple(f for f in t.files if f), t.reload) for t in targets]
        self.poll_s, self._daily = poll_s, daily
        self._stamps: dict[str, Stamp] = {f: stamp(f) for t in self.targets for f in t.files}
        self.reloads = 0  # successful target reloads
        self.failures = 0  # refused replacements
        self._task: asyncio.Task[None] | None = None

    @property
    def files(self) -> list[str]:
        return list(self._stamps)

    def check(self, force: bool = False) -> list[str]:
        """Reloads each target with a changed file (every target when `force`); returns the names reloaded."""
        changed = set()
        for path, before in self._stamps.items():
            now = stamp(path)
            if now != before:
                self._stamps[path] = now
                if now is not None:  # a file being renamed into place shows up on the next look
                    changed.add(path)
        done = []
        for target in self.targets:
            touched = sorted(changed.intersection(target.files))
            if not force and not touched:
                continue
            why = "SIGHUP" if force else "changed: " + ", ".join(touched)
            try:
                live = target.reload()
            except Exception as exc:  # noqa: BLE001 - whatever the cause, the current material must stay
                self.failures += 1
                logger.warning("TLS rotation: %s not reloaded (%s); keeping the current material: %s", target.name,
                               why, exc)
                continue
            self.reloads += 1
            done.append(target.name)
            logger.info("TLS rotation: reloaded %s (%s); new connections use %s", target.name, why, live)
        return done

    def request_reload(self) -> None:
        """Reloads every target now (the SIGHUP handler; call on the loop's thread)."""
        logger.info("SIGHUP: reloading the TLS material of %s", ", ".join(t.name for t in self.targets) or "nothing")
        self.check(force=True)

    async def watch(self) -> None:
        """Runs until cancelled: `check()` every `poll_s`, `daily` once a day."""
        last_daily = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                self.check()
                if self._daily is not None and time.monotonic() - last_daily >= CHECK_EVERY_S:
                    last_daily = time.monotonic()
                    self._daily()
            except Exception:  # the watcher must outlive any surprise; the current material stays
                logger.exception("TLS rotation: watching %s failed", ", ".join(self.files))

    def start(self) -> asyncio.Task[None]:
        """`watch()` as a task of the running loop; `stop()` ends it."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.watch(), name="tls-watch")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
