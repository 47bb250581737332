"""How much of a device's request the server pulls off its socket before the request is admitted: little.

asyncio's socket transport reads up to `max_size` (256 KiB) per recv and aiohttp feeds a request's body into memory
until 128 KiB past its read buffer, before the handler has even run. A LeNet update (247 kB) thus lands whole in the
server's memory the moment its connection becomes readable, whether or not the admission gate (server/admission.py)
lets it in: 10,000 devices uploading at once held 2.4 GiB in one server. So:

- every connection reads at most `QUEUED_READ_BYTES` per recv until a request is admitted (headers need no more),
  so a request waiting at the gate holds only what aiohttp's own flow control lets in before it pauses the
  connection; the rest of its body, and the TCP window, stay in the kernel and the device's send simply waits;
- an admitted request reads `ADMITTED_READ_BYTES` per recv (asyncio's default), so large bodies cost as few recvs and
  Python callbacks as before, and drops back to the small size once its body is in.

Measured with 2,000 connections each waiting with a 247 kB body: 514 MiB in the server before, 98 MiB with the small
reads. (Pausing the socket outright while queued saved another 13 kB a connection but, fighting aiohttp's own
pausing, left connections paused for good at 10,000 devices: not done.) Over TLS the transport decrypts in its own
buffers and has no `max_size`: there aiohttp's flow control alone applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

QUEUED_READ_BYTES = 4 * 1024
ADMITTED_READ_BYTES = 256 * 1024


def set_read_size(transport: asyncio.BaseTransport | None, size: int) -> None:
    """Bytes per recv of a plain socket transport (a no-op on transports without the knob, e.g. TLS)."""
    if transport is not None and hasattr(transport, "max_size"):
        transport.max_size = size


class PacedProtocol(asyncio.Protocol):
    """Wraps one aiohttp request handler so its connection starts with small reads; everything else passes through.

    Args:
        inner: the protocol aiohttp's server factory made for this connection.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_read_size(transport, QUEUED_READ_BYTES)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def paced(factory: Callable[[], Any]) -> Callable[[], PacedProtocol]:
    """A protocol factory for `loop.create_server` from aiohttp's (`AppRunner.server`)."""
    return lambda: PacedProtocol(factory())
