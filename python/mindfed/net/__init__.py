"""Node-to-node transport: framed request/response over TCP, run by a C++ I/O thread.

Protocol code uses `TcpEndpoint` (asyncio); it never opens sockets itself.
"""

from mindfed.net.endpoint import Frame, Handler, Payload, TcpEndpoint

__all__ = ["Frame", "Handler", "Payload", "TcpEndpoint"]
