"""The worker's one event loop, on a thread of its own, under a synchronous torch training loop.

A training step can take seconds and never yields to asyncio; the loop beside it keeps the worker's heartbeat in Redis
and its connections alive meanwhile. The training thread hands coroutines over with `call` and waits for their result.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running on a daemon thread until `close()`.

    Args:
        name: the thread's name (shows in stack dumps).
    """

    def __init__(self, name: str = "mindfed-worker-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run `coro` on the loop and wait for its result (its exception is raised here).

        Raises:
            TimeoutError: no result within `timeout_s` (the coroutine is cancelled).
        """
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        """Stop the loop (cancelling what still runs on it) and join the thread. Idempotent."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            self.call(self._cancel_all(), timeout_s=10.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10.0)
        self._loop.close()

    @staticmethod
    async def _cancel_all() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
