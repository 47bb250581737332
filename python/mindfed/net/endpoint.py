"""asyncio face of `_core.net.Node`: requests matched to responses, a handler for incoming ones.

All Python work stays on the event-loop thread. The C++ node's I/O thread queues whole frames
and connection closures; its `wake_fd()` is registered with `loop.add_reader`, and `_drain`
takes everything waiting without blocking. No C++ thread ever calls into Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from mindfed import _core
from mindfed.errors import NetworkError

logger = logging.getLogger(__name__)

FLAG_RESPONSE: int = _core.net.FLAG_RESPONSE
FLAG_ERROR: int = _core.net.FLAG_ERROR

Payload: TypeAlias = "bytes | bytearray | memoryview | npt.NDArray[Any]"
"""Anything C-contiguous with the buffer protocol. From 64 KiB up it is sent in place, without a
copy, so it must not be changed until the request has its answer (or `send` returned and the
write finished)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One received frame.

    Attributes:
        conn_id: The connection it came in on; `reply` answers on it.
        peer: "ip:port" of the remote end of that connection.
        type: Message type (0..65535), chosen by the protocol layer.
        request_id: Pairs a response with its request.
        flags: FLAG_RESPONSE / FLAG_ERROR bits.
        payload: The received bytes as a writable uint8 array that owns them (no copy was made);
            view it as float32 with `payload.view(np.float32)` when the length allows.
    """

    conn_id: int
    peer: str
    type: int
    request_id: int
    flags: int
    payload: npt.NDArray[np.uint8]


Handler: TypeAlias = Callable[[Frame], Awaitable["Payload | None"]]
"""Answers one request: returns the reply payload, or None when it replied itself (or will not)."""


class TcpEndpoint:
    """Request/response over a `_core.net.Node`, on one asyncio loop.

    Args:
        node: The node; the endpoint owns it from now on and closes it in `close()`.
        loop: The loop that runs this endpoint (default: the running one).
    """

    def __init__(self, node: _core.net.Node, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._node = node
        self._loop = loop or asyncio.get_running_loop()
        self.inbox: asyncio.Queue[Frame] = asyncio.Queue()
        """Requests that arrive while no handler is registered."""
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[int, asyncio.Future[Frame]]] = {}  # request_id -> (conn_id, future)
        self._handler: Handler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._loop.add_reader(node.wake_fd(), self._drain)

    @classmethod
    def open(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_connections: int = 10000,
        max_frame_bytes: int = 1 << 34,
        buffer_cache_bytes: int = 1 << 31,
        tls: _core.net.TlsOptions | None = None,
    ) -> TcpEndpoint:
        """Starts a node listening on host:port (0: a free port) with an endpoint on the running loop.

        Args:
            host: IPv4 or IPv6 address to listen on (peers are then "ip:port" or "[ipv6]:port").
            port: TCP port; 0 picks a free one (see `port`).
            max_connections: Accepted connections beyond this are closed (YAML client.connection_num).
            max_frame_bytes: Largest inbound payload; a larger one closes that connection.
            buffer_cache_bytes: Idle payload buffers (>= 1 MiB) kept for reuse by later frames of
                the same size once Python drops their arrays; saves the page faults of fresh memory.
            tls: Mutual TLS on every connection (see mindfed.net.tls); None: plain TCP.

        Raises:
            NetworkError: the address cannot be bound, or the TLS material cannot be loaded (a wrong p12
                password reads "PKCS12_parse failed").
            ValueError: host is not an IPv4 or IPv6 literal, or a limit is out of range.
        """
        return cls(_core.net.Node(host, port, max_connections, max_frame_bytes, buffer_cache_bytes, tls))

    @property
    def port(self) -> int:
        """The TCP port the node listens on."""
        return self._node.port()

    def reload_tls(self, tls: _core.net.TlsOptions) -> None:
        """New TLS material for connections accepted or opened from now on; open connections keep theirs.

        Blocks for the file reads and the PKCS#12 key derivation (the GIL is released meanwhile).

        Raises:
            NetworkError: the material cannot be loaded, or this endpoint is plain TCP; the current material stays.
        """
        self._node.reload_tls(tls)

    async def request(self, address: str | int, type: int, payload: Payload, timeout_s: float) -> Frame:
        """Sends a request and waits for its response.

        Args:
            address: "ip:port" of the peer (connected on first use, then reused), or a conn_id.
            type: Message type, 0..65535.
            payload: The request body (see `Payload`: not copied from 64 KiB up).
            timeout_s: Deadline for the response, in seconds.

        Returns:
            The response frame (same request_id, FLAG_RESPONSE set).

        Raises:
            NetworkError: no response within timeout_s, the connection failed or closed, the
                peer's handler failed (FLAG_ERROR), or this endpoint was closed.
        """
        if self._closed.is_set():
            raise NetworkError("endpoint is closed")
        request_id = next(self._ids)
        future: asyncio.Future[Frame] = self._loop.create_future()
        conn_id = self._node.send(address, type, request_id, 0, payload)
        self._pending[request_id] = (conn_id, future)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:  # asyncio.TimeoutError is TimeoutError from 3.11
            raise NetworkError(
                f"no response from {address} to request {request_id} (type {type}) within {timeout_s} s"
            ) from exc
        finally:
            self._pending.pop(request_id, None)

    def send(self, address: str | int, type: int, payload: Payload, request_id: int = 0, flags: int = 0) -> int:
        """Queues one frame without waiting for anything; returns the connection id.

        Raises:
            NetworkError: conn_id names a closed connection, or the endpoint is closed.
        """
        return self._node.send(address, type, request_id, flags, payload)

    def reply(self, frame: Frame, payload: Payload, *, type: int | None = None, error: bool = False) -> None:
        """Answers `frame` on the connection it came in on.

        Raises:
            NetworkError: that connection has closed meanwhile.
        """
        flags = FLAG_RESPONSE | (FLAG_ERROR if error else 0)
        self._node.send(frame.conn_id, frame.type if type is None else type, frame.request_id, flags, payload)

    def on_request(self, handler: Handler) -> None:
        """Runs `handler` (as its own task) for every request from now on; a returned payload is the reply.

        A handler that raises is logged, and the requester gets FLAG_ERROR (NetworkError there).
        Requests already in `inbox` are handed to it too.
        """
        self._handler = handler
        while not self.inbox.empty():
            self._start_handler(self.inbox.get_nowait())

    async def serve(self, handler: Handler) -> None:
        """Registers `handler` (see `on_request`) and returns once the endpoint is closed."""
        self.on_request(handler)
        await self._closed.wait()

    def close(self) -> None:
        """Stops the node (joins its I/O thread), fails pending requests, cancels handler tasks. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._loop.remove_reader(self._node.wake_fd())
        self._node.close()
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(NetworkError("endpoint closed with the request pending"))
        for task in self._tasks:
            task.cancel()

    async def aclose(self) -> None:
        """`close()`, then waits for the cancelled handler tasks to finish."""
        self.close()
        tasks = list(self._tasks)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> TcpEndpoint:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _drain(self) -> None:
        for conn_id, peer, type_, request_id, flags, payload in self._node.take_ready():
            if type_ == _core.net.CLOSED:
                self._fail_connection(conn_id, peer, str(payload))
                continue
            assert not isinstance(payload, str)
            frame = Frame(conn_id, peer, type_, request_id, flags, payload)
            if flags & FLAG_RESPONSE:
                self._resolve(frame)
            elif self._handler is not None:
                self._start_handler(frame)
            else:
                self.inbox.put_nowait(frame)

    def _resolve(self, frame: Frame) -> None:
        entry = self._pending.get(frame.request_id)
        if entry is None or entry[0] != frame.conn_id or entry[1].done():
            logger.debug("late or unknown response %d from %s dropped", frame.request_id, frame.peer)
            return
        if frame.flags & FLAG_ERROR:
            reason = frame.payload.tobytes().decode("utf-8", "replace")
            entry[1].set_exception(NetworkError(f"{frame.peer} failed request {frame.request_id}: {reason}"))
        else:
            entry[1].set_result(frame)

    def _fail_connection(self, conn_id: int, peer: str, reason: str) -> None:
        # a refused TLS peer (other CA, revoked, plain TCP) is worth an operator's attention
        log = logger.warning if "TLS" in reason else logger.info
        log("connection %d to %s closed: %s", conn_id, peer, reason)
        for request_id, (pending_conn, future) in self._pending.items():
            if pending_conn == conn_id and not future.done():
                future.set_exception(NetworkError(f"request {request_id} to {peer} failed: {reason}"))

    def _start_handler(self, frame: Frame) -> None:
        task = self._loop.create_task(self._answer(frame), name=f"net-request-{frame.request_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, frame: Frame) -> None:
        assert self._handler is not None
        try:
            result = await self._handler(frame)
        except Exception as exc:  # the requester must hear about it rather than time out
            logger.exception("handler failed on request %d (type %d) from %s", frame.request_id, frame.type, frame.peer)
            with contextlib.suppress(NetworkError):
                self.reply(frame, f"{type(exc).__name__}: {exc}".encode(), error=True)
            return
        if result is not None:
            try:
                self.reply(frame, result)
            except NetworkError:
                logger.info("cannot answer request %d: %s closed the connection", frame.request_id, frame.peer)
