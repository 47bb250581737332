"""Response bodies that many devices get byte for byte (the model in startFLJob and getModel), sent with sendfile(2).

A body written with `transport.write()` that the socket cannot take at once is copied into that connection's buffer
(asyncio on 3.11: a bytearray per connection), so 10,000 devices fetching a LeNet model at an iteration's end could
hold 10,000 copies of it in the server, however well the response itself is cached. A `SharedBody` is written once
into an anonymous memory file (memfd) and every reply of it is sendfile'd from there: the kernel reads the same pages
for each device and the server keeps nothing per connection. Plain TCP only: over TLS the bytes must pass through the
TLS layer, and the usual write (bounded by aiohttp's drain) is used.
"""

from __future__ import annotations

import asyncio
import io
import os
from typing import Any

from aiohttp import web

SENDFILE_MIN_BYTES = 64 * 1024  # below this one write() is as cheap, and the socket takes it whole


class SharedBody(bytes):
    """bytes, and (made on first use, closed when the body is garbage) a memfd holding the same bytes."""

    _file: io.BufferedReader | None = None

    def file(self) -> io.BufferedReader:
        if self._file is None:
            fd = os.memfd_create("mindfed-response", os.MFD_CLOEXEC)
            with memoryview(self) as view:
                written = 0
                while written < len(view):
                    written += os.write(fd, view[written:])
            self._file = os.fdopen(fd, "rb")
        return self._file

    def __del__(self) -> None:
        # Every reply in flight holds the body (SharedBodyResponse), so nobody reads the file once it is garbage.
        if self._file is not None:
            self._file.close()


def sendfile_able(request: web.BaseRequest, body: bytes) -> bool:
    """Whether `body` goes out by sendfile on this request's connection."""
    transport = request.transport
    return (isinstance(body, SharedBody) and len(body) >= SENDFILE_MIN_BYTES and transport is not None
            and transport.get_extra_info("sslcontext") is None and transport.get_extra_info("socket") is not None)


class SharedBodyResponse(web.StreamResponse):
    """The response aiohttp sends by calling `prepare`: the headers, then the body straight from the memfd (what
    aiohttp's own FileResponse does with a file on disk)."""

    def __init__(self, body: SharedBody) -> None:
        super().__init__()
        self._shared = body
        self.content_type = "application/octet-stream"
        self.content_length = len(body)

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self.prepared:
            return await super().prepare(request)
        writer = await super().prepare(request)  # the headers, sent at once (StreamResponse)
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("Connection lost")
        await asyncio.get_running_loop().sendfile(transport, self._shared.file(), 0, len(self._shared))
        await super().write_eof()
        return writer
