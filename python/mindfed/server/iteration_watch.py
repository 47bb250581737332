"""Long polling for getModel/getResult (`client.poll_hold_ms`): an answer that would be SucNotReady waits for the
server's iteration to move on, instead of sending the device away to ask again.

Devices poll those two rounds until the iteration ends (Java: every SLEEP_TIME; our simulator: every poll interval).
With 10,000 devices waiting, the polls alone were thousands of requests a second, each a full HTTP exchange, and the
updates still to come queued behind them. Held, a waiting device costs one parked coroutine and its timer; every
waiter wakes at the switch, re-checks, and gets the model at once. The hold is bounded well under what devices allow an
exchange (MindSpore's Java client reads for 90 s, our SDK 60 s), and a stopping server releases every waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class IterationWatch:
    """Wakes the requests waiting for this server's iteration to move on (or for it to stop). Event-loop only."""

    def __init__(self) -> None:
        self._moved = asyncio.Event()

    def notify(self) -> None:
        """The iteration moved on (a switch, a new instance) or the server is stopping: wake every waiter."""
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def hold(self, waiting: Callable[[], bool], hold_s: float) -> None:
        """Return once `waiting()` is false, or after `hold_s` seconds, whichever comes first."""
        if hold_s <= 0:
            return
        deadline = asyncio.get_running_loop().time() + hold_s
        while waiting():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), left)
