"""How a hybrid worker reaches a server: over the node transport (the C++ TCP core, mutual TLS under enable_ssl), to
a live server chosen from Redis, failing over when it dies.

The worker keeps to one server while it answers. A connection that fails (refused, reset, no answer in
`request_timeout_s`) marks that server as failed for a while and the request goes to the next live one; the server
list is read from Redis again before every choice, so a server that died drops out within its heartbeat TTL and a new
one is found. Safemode is waited out and asked again, as MindSpore's worker does (spec §11.1); "disabled or finished"
is handed to the caller, which reads from Redis whether to wait (disabled) or stop (finished).
"""

from __future__ import annotations

import asyncio
import logging
import time

from mindfed.cache.store import CacheStore
from mindfed.errors import NetworkError
from mindfed.net.endpoint import TcpEndpoint
from mindfed.protocol.plain_text import PLAIN_TEXT_MAX_BYTES, TEXT_INNER_ERROR, TEXT_JOB_NOT_AVAILABLE, TEXT_SAFEMODE

logger = logging.getLogger(__name__)

REFUSED_RETRY_S = 0.5  # MindSpore: kWorkerRetryDurationForSafeMode
FAILED_SERVER_PAUSE_S = 5.0


class NoServerError(NetworkError):
    """No live server of the job answered within the wait."""


class JobNotAvailable(NetworkError):  # noqa: N818 - MindSpore's text names it
    """A server answered "The server's training job is disabled or finished.": the caller tells which from Redis."""


class ServerLink:
    """Request/response with some live server of the job.

    Args:
        endpoint: this worker's node endpoint (its own listening port is never used by servers).
        store: the job's store, for the live servers of the instance.
        request_timeout_s: deadline of one request to one server (MindSpore: 30 s).
    """

    def __init__(self, endpoint: TcpEndpoint, store: CacheStore, request_timeout_s: float = 30.0) -> None:
        self._endpoint = endpoint
        self._store = store
        self._timeout_s = request_timeout_s
        self._current: str | None = None  # tcp address of the server in use
        self._failed: dict[str, float] = {}  # tcp address -> monotonic time it failed

    @property
    def server(self) -> str | None:
        """The tcp address of the server in use (None before the first request)."""
        return self._current

    async def _choose(self, instance: str) -> str | None:
        alive = await self._store.alive_servers(instance)
        addresses = [alive[node] for node in sorted(alive)]
        now = time.monotonic()
        usable = [a for a in addresses if now - self._failed.get(a, -FAILED_SERVER_PAUSE_S) >= FAILED_SERVER_PAUSE_S]
        if self._current in usable:
            return self._current
        return usable[0] if usable else None

    async def request(self, instance: str, frame_type: int, payload: bytes, wait_s: float) -> bytes:
        """The reply of a live server to one request, past refusals and dead servers.

        Args:
            instance: the job's current instance (where servers register).
            frame_type: one of protocol.hybrid's frame types.
            payload: the request table.
            wait_s: how long to keep trying (refusals, no live server, failed connections).

        Returns:
            The reply payload (a response table).

        Raises:
            NoServerError: no server gave an answer other than a refusal within `wait_s`.
        """
        deadline = time.monotonic() + wait_s
        last = "no live server registered"
        while True:
            address = await self._choose(instance)
            if address is not None:
                try:
                    frame = await self._endpoint.request(address, frame_type, payload, self._timeout_s)
                except NetworkError as exc:
                    self._failed[address] = time.monotonic()
                    if self._current == address:
                        self._current = None
                    last = f"server {address} failed: {exc}"
                    logger.warning("%s; trying another server", last)
                    continue
                self._current = address
                reply = frame.payload.tobytes()
                refused = _refusal(reply)
                if refused is None:
                    return reply
                if refused == TEXT_JOB_NOT_AVAILABLE:
                    raise JobNotAvailable(f"server {address}: {refused}")
                last = f"server {address}: {refused}"
            if time.monotonic() > deadline:
                raise NoServerError(f"no answer from the job's servers within {wait_s:.0f} s ({last})")
            await asyncio.sleep(REFUSED_RETRY_S)


def _refusal(reply: bytes) -> str | None:
    """The refusal text a server answered instead of a table, or None."""
    if len(reply) > PLAIN_TEXT_MAX_BYTES:
        return None
    text = reply.decode("utf-8", "replace")
    for refusal in (TEXT_SAFEMODE, TEXT_JOB_NOT_AVAILABLE, TEXT_INNER_ERROR):
        if text.startswith(refusal):
            return refusal
    return None
