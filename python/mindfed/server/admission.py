"""Back-pressure in front of the rounds that work on Redis: a bounded number of requests (and of their body bytes)
at once; the others wait their turn on their connection, their bodies left in the socket.

Without it, 10,000 devices posting at an iteration's start queue 10,000 requests on the server's bounded Redis pool
(cache/store.py); those at the back wait longer than the pool's timeout and are answered safemode although Redis is
fine, and every waiting body sits in memory. A request waits here without a time limit: the requests ahead of it
each end within their own Redis timeouts, so the queue always moves, and a device that gives up simply disconnects.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mindfed.cache.clients import POOL_CONNECTIONS

MAX_REQUESTS = 2 * POOL_CONNECTIONS  # enough to keep every pooled Redis connection busy, few enough to wait briefly
MIN_BYTES = 16 << 20  # small bodies: 64 LeNet uploads at once; the server gives large models 2 x model (node.py)


class AdmissionGate:
    """At most `max_requests` requests and `max_bytes` declared body bytes inside at once; a request larger than
    `max_bytes` alone gets in once nothing else is inside. Event-loop thread only.

    Args:
        max_requests: Requests inside at once.
        max_bytes: Sum of their Content-Lengths.
    """

    def __init__(self, max_requests: int = MAX_REQUESTS, max_bytes: int = MIN_BYTES) -> None:
        if max_requests < 1 or max_bytes < 1:
            raise ValueError("max_requests and max_bytes must be positive")
        self.max_requests, self.max_bytes = max_requests, max_bytes
        self.inside = 0
        self.inside_bytes = 0
        self._queue: deque[tuple[int, asyncio.Future[None]]] = deque()  # first come, first served

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _fits(self, size: int) -> bool:
        if self.inside == 0:
            return True
        return self.inside < self.max_requests and self.inside_bytes + size <= self.max_bytes

    @asynccontextmanager
    async def enter(self, size: int) -> AsyncIterator[None]:
        """Holds a place for a request of `size` body bytes (its Content-Length; 0 if unknown) while inside."""
        size = max(0, size)
        if self._queue or not self._fits(size):
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (size, future)
            self._queue.append(entry)
            try:
                await future  # _admit counted us in before resolving it
            except BaseException:
                if future.done() and not future.cancelled():
                    self._leave(size)  # admitted, then cancelled before running: give the place back
                else:
                    self._queue.remove(entry)
                    self._admit()
                raise
        else:
            self.inside += 1
            self.inside_bytes += size
        try:
            yield
        finally:
            self._leave(size)

    def _leave(self, size: int) -> None:
        self.inside -= 1
        self.inside_bytes -= size
        self._admit()

    def _admit(self) -> None:
        while self._queue and self._fits(self._queue[0][0]):
            size, future = self._queue.popleft()
            if future.cancelled():
                continue
            self.inside += 1
            self.inside_bytes += size
            future.set_result(None)
