"""Blocking until SIGTERM/SIGINT, as MindSpore's jobs do (`CC/common/exit_handler.cc`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading

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
