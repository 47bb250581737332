"""Reading device request bodies: streamed into one preallocated buffer, bounded in size and time.

`await request.read()` copies a 4 MB body several times (about 1 GB/s here); filling a buffer sized from
Content-Length chunk by chunk reaches about 4 GB/s (see ../shared/reference/performance-limits.md).

Large buffers are reused: a fresh 40 MB `bytearray` costs ~30 ms of zeroing and page faults before the first byte
lands (more than receiving it), and every device of a job uploads bodies of the same size. A pooled buffer is handed
out again only when nothing but the pool refers to it: numpy views (`np.frombuffer`), memoryviews and the request
views all hold a reference to the bytearray they borrow, so a reference count at the pool's own baseline means free.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

POOL_MIN_BYTES = 1 << 20  # smaller bodies come from malloc's free lists cheaply
POOL_MAX_BUFFERS = 8
POOL_MAX_BYTES = 1 << 30


class BufferPool:
    """Large bytearrays kept for reuse by size. Event-loop thread only; other threads may only drop references.

    Args:
        max_buffers: Most buffers kept.
        max_bytes: Most bytes kept in all.
        min_bytes: Smaller requests get a fresh bytearray and are not kept.
    """

    def __init__(self, max_buffers: int = POOL_MAX_BUFFERS, max_bytes: int = POOL_MAX_BYTES,
                 min_bytes: int = POOL_MIN_BYTES) -> None:
        self._buffers: list[bytearray] = []
        self._max_buffers, self._max_bytes, self._min_bytes = max_buffers, max_bytes, min_bytes

    def take(self, size: int) -> bytearray:
        """A bytearray of exactly `size` bytes that nobody else refers to; its content is undefined."""
        if size < self._min_bytes:
            return bytearray(size)
        for buf in self._buffers:
            # References: the pool's list, `buf` here and getrefcount's argument. Anything more is a borrower.
            if len(buf) == size and sys.getrefcount(buf) <= 3:
                return buf
        buf = bytearray(size)
        self._keep(buf)
        return buf

    def _keep(self, buf: bytearray) -> None:
        if len(buf) > self._max_bytes:
            return
        # Make room by dropping free buffers (oldest first); borrowed ones stay until their borrowers let go.
        while (len(self._buffers) >= self._max_buffers
               or sum(map(len, self._buffers)) + len(buf) > self._max_bytes):
            # References of a free one: the pool's list and getrefcount's argument.
            free = next((i for i in range(len(self._buffers)) if sys.getrefcount(self._buffers[i]) <= 2), None)
            if free is None:
                return
            del self._buffers[free]
        self._buffers.append(buf)


_POOL = BufferPool()


class BodyError(Exception):
    """The body cannot be accepted; `status` is the HTTP status to answer (never 5xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request: web.Request, limit_bytes: int, timeout_s: float) -> bytearray:
    """The whole body in one bytearray (numpy views into it need no further copy).

    Raises:
        BodyError: empty (400), larger than `limit_bytes` (413), shorter than announced or too slow (400/408).
    """
    declared = request.content_length
    if declared is not None and declared > limit_bytes:
        raise BodyError(413, f"request body of {declared} bytes exceeds the limit of {limit_bytes} bytes")
    try:
        async with asyncio.timeout(timeout_s):
            body = await (_read_sized(request, declared) if declared is not None else _read_chunked(request,
                                                                                                   limit_bytes))
    except TimeoutError:
        raise BodyError(408, f"request body not received within {timeout_s} s") from None
    if not body:
        raise BodyError(400, "Get post message failed")
    return body


async def _read_sized(request: web.Request, declared: int) -> bytearray:
    buf = _POOL.take(declared)
    with memoryview(buf) as view:  # released before returning, so the pool's reference count sees only `buf`
        pos = 0
        while pos < declared:
            # read(n), not iter_any(): aiohttp then lets n bytes of this body into its buffer before it pauses the
            # connection, instead of 2 x read_bufsize (server/read_pacing.py keeps that small for waiting requests)
            chunk = await request.content.read(declared - pos)
            if not chunk:
                break
            view[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
    if pos != declared:
        raise BodyError(400, f"request body ended after {pos} of {declared} bytes")
    return buf


async def _read_chunked(request: web.Request, limit_bytes: int) -> bytearray:
    buf = bytearray()
    async for chunk in request.content.iter_any():
        if len(buf) + len(chunk) > limit_bytes:
            raise BodyError(413, f"request body exceeds the limit of {limit_bytes} bytes")
        buf += chunk
    return buf
