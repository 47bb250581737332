"""How much of a device's request the server takes off the device before the request is admitted: little, in the
server's memory and in its kernel.

A request waiting at the admission gate (server/admission.py) has usually sent its headers and started its body. What
the server does not read stays in one of three places: the server's process, the server's kernel (the connection's
receive queue) or the device. Only the device is free, so:

- every connection reads at most `QUEUED_READ_BYTES` per recv until a request is admitted (headers need no more);
- an admitted request reads `ADMITTED_READ_BYTES` per recv (asyncio's default) and drops back to the small size once
  its body is in; its body is read with `content.read(remaining)`, which lifts aiohttp's buffer limit for that request
  alone (server/body.py), so the connection is not paused and resumed every 2 x read_bufsize;
- with `client.receive_buffer_bytes` set (0, the default, keeps the kernel's buffers and aiohttp's 64 KiB read buffer),
  aiohttp's read buffer is `BOUNDED_READ_BUFSIZE`, so a waiting request's body buffer pauses the connection past 2 KiB
  (aiohttp streams.py, `StreamReader.feed_data`: `if self._size > self._high_water: self._protocol.pause_reading()`):
  the first 4 KiB read, in the process, instead of 128 KiB and more (10,000 devices uploading a LeNet update at once
  held 2.6 GB in one server; with a 4 KiB read buffer, 12 KiB each: a 364 MiB peak, 285 MiB with 1 KiB); and every
  accepted connection has that kernel receive buffer, set on the listening socket so the window the SYN-ACK offers
  already fits it: TCP flow control keeps the rest of a waiting body on the device.

Why the two go together (10,000 devices stalled at ~6,000 updates with only the small read buffer): with Linux's
default buffer (tcp_rmem 128 KiB, grown by autotuning on connections that carried a large upload) the bodies the
process no longer holds pile up in the kernel instead: 10,000 waiting LeNet uploads put ~1.7 GB into the machine's TCP
memory, past `net.ipv4.tcp_mem`'s pressure threshold. Under TCP memory pressure the kernel drops in-window segments
(TcpExtTCPRcvQDrop), also those of admitted connections; their senders then wait out exponentially backed-off
retransmission timeouts (seen: rto 26.6 s, backoff 7) while the admitted requests sit in the body read with empty
buffers, every gate seat held: the stall. aiohttp's and asyncio's flow control were innocent (the stuck connections were
reading, aiohttp not paused, nothing in their receive queues). Neither TCP_WINDOW_CLAMP (Linux recomputes the clamp
from the buffer) nor shrinking SO_RCVBUF on an accepted socket (the kernel then drops data inside the window it has
already offered: retransmits, RTO backoff) bounds the queue safely; a buffer that is small from the SYN does.

Why it is not the default: the window scale is fixed at the SYN too, so with 16 KiB a connection's window stays
under 64 KiB and one device uploads about 24 KiB per round trip (0.5 MB/s at 50 ms: enough for a phone's LeNet
update, not for a 40 MB one), and each upload takes more, smaller reads (on loopback the CPU cost did not show:
10,000 LeNet devices in one round, 96 s of server CPU with 16 KiB against 111 s without; 8 devices x 1M floats,
0.33-0.36 s against 0.29-0.30 s per round on a loaded machine). A server facing many devices at once turns it on; one
facing a few large uploads over long paths keeps the kernel's autotuning. Over TLS the transport decrypts into its
own buffers and has no `max_size`; the kernel buffer still applies.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

QUEUED_READ_BYTES = 4 * 1024
ADMITTED_READ_BYTES = 256 * 1024
BOUNDED_READ_BUFSIZE = 1024  # aiohttp's read_bufsize when bounded: a body buffer pauses the connection past 2x
AIOHTTP_READ_BUFSIZE = 2**16  # aiohttp's default


def read_bufsize(receive_buffer_bytes: int) -> int:
    """aiohttp's read_bufsize for `client.receive_buffer_bytes`: small only together with a bounded kernel buffer
    (a small one alone moves the waiting bodies into the kernel, where 10,000 of them reach TCP memory pressure)."""
    return BOUNDED_READ_BUFSIZE if receive_buffer_bytes else AIOHTTP_READ_BUFSIZE


def bound_receive_buffer(listener: socket.socket, size: int) -> None:
    """Gives every connection `listener` accepts a `size`-byte receive buffer (before listen(): the SYN-ACK's window
    and window scale are computed from it); 0 leaves the kernel's default and autotuning."""
    if size:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


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
