"""Blocking until SIGTERM/SIGINT, as MindSpore's jobs do (`CC/common/exit_handler.cc`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


def stop_on_signals(stop: asyncio.Event) -> None:
    """Sets `stop` on SIGTERM or SIGINT. Off the main thread signals cannot be caught; the job then runs until
    its `stop()` is called."""
    if threading.current_thread() is not threading.main_thread():
        logger.warning("run() is not on the main thread: SIGTERM/SIGINT cannot stop it; call stop()")
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def reload_tls_on_sighup(reload_tls: Callable[[], object]) -> None:
    """SIGHUP calls `reload_tls` (certificate rotation, mindfed.tls.rotation) instead of ending the process; off the
    main thread SIGHUP cannot be caught and keeps its default action."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_sighup() -> None:
        try:
            reload_tls()
        except Exception:  # a signal handler must not take the loop down; the current material stays
            logger.exception("SIGHUP: reloading the TLS material failed")

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)


class StopSwitch:
    """A thread-safe way to end a running `run()` from elsewhere (tests, embedding applications)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._requested = False

    def bind(self) -> asyncio.Event:
        """Called on the job's loop: the event `run()` waits on."""
        self._loop, self._event = asyncio.get_running_loop(), asyncio.Event()
        if self._requested:
            self._event.set()
        return self._event

    def request(self) -> None:
        self._requested = True
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)
