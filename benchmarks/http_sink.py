"""A raw asyncio HTTP/1.1 sink: the most a Python event loop can ingest, as a yardstick for the server.

It parses only the request line, the headers and Content-Length, receives each body straight into a preallocated
buffer (`asyncio.BufferedProtocol`, no intermediate chunks), and answers a small 200. Keep-alive, no chunked bodies.
Run by `benchmarks.ingest` in its own process: `python -m benchmarks.http_sink --port PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

MAX_HEADER_BYTES = 64 * 1024
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n\r\nok"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def content_length(head: bytes) -> int | None:
    """The Content-Length of a request head (request line and headers, without the blank line), or None."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


class SinkProtocol(asyncio.BufferedProtocol):
    """One connection: headers into a small buffer, each body into a buffer reused while it is large enough."""

    def __init__(self) -> None:
        self._head = bytearray(MAX_HEADER_BYTES)
        self._head_len = 0
        self._body = bytearray(0)
        self._body_view = memoryview(self._body)
        self._body_len = 0
        self._body_pos = 0
        self._in_body = False
        self._transport: asyncio.Transport | None = None
        self.bodies = 0
        self.body_bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._in_body:
            return self._body_view[self._body_pos:self._body_len]
        return memoryview(self._head)[self._head_len:]

    def buffer_updated(self, nbytes: int) -> None:
        if self._in_body:
            self._body_pos += nbytes
            if self._body_pos == self._body_len:
                self._finish_body()
            return
        self._head_len += nbytes
        self._parse_heads()

    def _parse_heads(self) -> None:
        """Handles every complete head in the header buffer (bytes after a head start its body)."""
        while not self._in_body:
            end = self._head.find(b"\r\n\r\n", 0, self._head_len)
            if end < 0:
                if self._head_len == MAX_HEADER_BYTES:
                    self._refuse()
                return
            try:
                declared = content_length(bytes(self._head[:end])) or 0
            except ValueError:
                self._refuse()
                return
            rest = self._head[end + 4:self._head_len]
            self._start_body(declared)
            take = min(len(rest), declared)
            self._body_view[:take] = rest[:take]
            self._body_pos = take
            leftover = rest[take:]
            self._head[:len(leftover)] = leftover
            self._head_len = len(leftover)
            if self._body_pos == self._body_len:
                self._finish_body()

    def _start_body(self, declared: int) -> None:
        if len(self._body) < declared:
            self._body_view.release()
            self._body = bytearray(declared)
            self._body_view = memoryview(self._body)
        self._body_len, self._body_pos, self._in_body = declared, 0, True

    def _finish_body(self) -> None:
        self._in_body = False
        self.bodies += 1
        self.body_bytes += self._body_len
        assert self._transport is not None
        self._transport.write(REPLY)
        if self._head_len:
            self._parse_heads()

    def _refuse(self) -> None:
        assert self._transport is not None
        self._transport.write(BAD_REQUEST)
        self._transport.close()


async def serve(host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(SinkProtocol, host, port, backlog=1024)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_sink", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
