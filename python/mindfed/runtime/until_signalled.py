"""Run a started service until SIGINT or SIGTERM, then stop it: the main loop of every mindfed role."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

logger = logging.getLogger(__name__)


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_until_signalled(service: Service) -> None:
    """Start `service`, wait for SIGINT/SIGTERM, stop it (also when start-up or the wait fails)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        logger.info("stopping")
        await service.stop()
