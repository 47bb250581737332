"""Reading device request bodies: streamed into one preallocated buffer, bounded in size and time.

`await request.read()` copies a 4 MB body several times (about 1 GB/s here); filling a buffer sized from
Content-Length chunk by chunk reaches about 4 GB/s (see ../shared/reference/performance-limits.md).
"""

from __future__ import annotations

import asyncio

from aiohttp import web


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
    buf = bytearray(declared)
    view, pos = memoryview(buf), 0
    async for chunk in request.content.iter_any():
        end = pos + len(chunk)
        if end > declared:
            raise BodyError(400, f"request body longer than its Content-Length {declared}")
        view[pos:end] = chunk
        pos = end
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
