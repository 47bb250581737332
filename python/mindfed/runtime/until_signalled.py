"""Run a started service until SIGINT or SIGTERM, then stop it: the main loop of every mindfed role.

SIGHUP asks a service that has `reload_tls()` (a server, the scheduler) to load its TLS files again (certificate
rotation, mindfed.tls.rotation); it never stops the process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_until_signalled(service: Service) -> None:
    """Start `service`, wait for SIGINT/SIGTERM, stop it (also when start-up or the wait fails); SIGHUP calls its
    `reload_tls()` if it has one."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reload_tls = getattr(service, "reload_tls", None)
    if callable(reload_tls):
        loop.add_signal_handler(signal.SIGHUP, _guarded(reload_tls))
    await service.start()
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        await service.stop()


def _guarded(reload_tls: Callable[[], object]) -> Callable[[], None]:
    def on_sighup() -> None:
        try:
            reload_tls()
        except Exception:  # a signal handler must not take the loop down; the current material stays
            logger.exception("SIGHUP: reloading the TLS material failed")

    return on_sighup
