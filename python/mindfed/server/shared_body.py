"""Response bodies that many devices get byte for byte (the model in startFLJob and getModel), sent with sendfile(2).

A body written with `transport.write()` that the socket cannot take at once is copied into that connection's buffer
(asyncio on 3.11: a bytearray per connection), so 10,000 devices fetching a LeNet model at an iteration's end could
hold 10,000 copies of it in the server, however well the response itself is cached. A `SharedBody` is written once
into an anonymous memory file (memfd) and every reply of it is sendfile'd from there: the kernel reads the same pages
for each device and the server keeps nothing per connection, and no copy of it in the heap either. Plain TCP only:
over TLS the bytes must pass through the TLS layer, and the usual write (bounded by aiohttp's drain) is used.

`SharedBody.built` has the message built in the memfd itself: the FlatBuffers builder writes straight into a writable
mapping of it (protocol/writer.py `into`), so a model answer costs one copy of the model (before: the builder's
zeroed buffer, a copy from the tensor's `tobytes()`, one into the builder, one out of it, and one into the memfd).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import mmap
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

if TYPE_CHECKING:
    from typing_extensions import Buffer

SENDFILE_MIN_BYTES = 64 * 1024  # below this one write() is as cheap, and the socket takes it whole


class SharedBody:
    """One response body held once, in a memfd rather than in the heap: sendfile'd to plain-TCP devices, read through
    a read-only mapping of the same pages otherwise (TLS, workers). Before (a bytes subclass plus the memfd) a
    cached 40 MB model answer cost 40 MB of heap for the bytes, 40 MB of shared memory for the file, and a copy
    more while being made; startFLJob's and getModel's answers are each cached per iteration.

    Args:
        data: the bytes; copied into the memfd, not kept.
    """

    __slots__ = ("__weakref__", "_file", "_map", "offset", "size")

    def __init__(self, data: Buffer) -> None:
        self._file = _memfd()
        self._write_at_start(data)

    @classmethod
    def built(cls, write: Callable[[Callable[[int], mmap.mmap]], Buffer]) -> SharedBody:
        """A body built in place: `write(allocate)` builds the message into `allocate(size)`, a writable mapping of
        a fresh memfd of that size (once), and returns it: a view of where it lies in that mapping. A message
        returned from elsewhere (bytes, or a builder that outgrew the mapping) is copied in, as by the constructor.
        The body is the message's bytes only; the file's pages before them were never written, so never allocated.
        """
        body = cls.__new__(cls)
        body._file, body._map, body.offset, body.size = _memfd(), None, 0, 0
        fd = body._file.fileno()
        mapped: list[mmap.mmap] = []

        def allocate(size: int) -> mmap.mmap:
            if mapped:
                raise RuntimeError("a SharedBody is built in one buffer")
            os.ftruncate(fd, size)
            mapped.append(mmap.mmap(fd, size))  # MAP_SHARED, read-write: the writes are the file's pages
            return mapped[0]

        try:
            message = write(allocate)
            with memoryview(message) as view:
                offset = _offset_in(view, mapped[0]) if mapped else None
                if offset is not None:
                    body.offset, body.size = offset, view.nbytes
                    body._map = mmap.mmap(fd, offset + view.nbytes, prot=mmap.PROT_READ)
                else:  # a copy first when it lies in the mapping: the file is truncated under it
                    body._write_at_start(bytes(view) if mapped and view.obj is mapped[0] else view)
            if isinstance(message, memoryview):
                message.release()
        finally:
            if mapped:
                with contextlib.suppress(BufferError):  # a view still exported: the mapping goes with it instead
                    mapped[0].close()
        return body

    def _write_at_start(self, data: Buffer) -> None:
        fd = self._file.fileno()
        with memoryview(data) as view:
            self.offset, self.size = 0, view.nbytes
            os.ftruncate(fd, 0)
            written = 0
            while written < self.size:
                written += os.write(fd, view[written:])
        self._map = mmap.mmap(fd, self.size, prot=mmap.PROT_READ) if self.size else None

    def __len__(self) -> int:
        return self.size

    def view(self) -> memoryview:
        """The bytes, read-only, without a copy (the mapping's pages are the file's)."""
        if self._map is None:
            return memoryview(b"")
        return memoryview(self._map)[self.offset : self.offset + self.size]

    def __bytes__(self) -> bytes:
        return bytes(self.view())

    def file(self) -> io.BufferedReader:
        """The memfd, for sendfile: the body is its bytes from `offset` on."""
        return self._file

    def __del__(self) -> None:
        # Every reply in flight holds the body (SharedBodyResponse), so nobody sendfiles from it now. A mapping with a
        # view still exported (a worker's frame being sent from it) cannot close: the view keeps it, and the mapping
        # has its own descriptor (mmap dups it), so the file closes either way.
        mapping, file = getattr(self, "_map", None), getattr(self, "_file", None)  # absent if the memfd failed
        if mapping is not None:
            with contextlib.suppress(BufferError):
                mapping.close()
        if file is not None:
            file.close()


def _memfd() -> io.BufferedReader:
    """A fresh anonymous memory file; the object closes its descriptor when garbage, also if a write fails."""
    return os.fdopen(os.memfd_create("mindfed-response", os.MFD_CLOEXEC), "rb")


def _offset_in(view: memoryview, mapping: mmap.mmap) -> int | None:
    """Where `view` starts in `mapping`, if it is a contiguous slice of it that ends at the mapping's end."""
    if view.obj is not mapping or not view.contiguous or not view.nbytes:
        return None
    start = np.frombuffer(view, np.uint8).ctypes.data - np.frombuffer(mapping, np.uint8).ctypes.data
    return int(start) if start + view.nbytes == len(mapping) else None


def sendfile_able(request: web.BaseRequest, body: bytes | SharedBody) -> bool:
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
        shared = self._shared
        await asyncio.get_running_loop().sendfile(transport, shared.file(), shared.offset, len(shared))
        await super().write_eof()
        return writer
