"""What servers ask each other over the C++ TCP transport: the partial sums of an iteration. Hybrid workers' requests
arrive on the same endpoint and are answered by server/worker_api.py.

The aggregator asks every live server that accepted updates for its in-memory partial sums (exact, and no Redis
traffic); a server that does not answer in time is read from Redis instead (checkpoint + logged updates), so a slow or
dead peer changes the speed of the combine, never its result.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from mindfed.errors import NetworkError, ProtocolError
from mindfed.net.endpoint import Frame, TcpEndpoint
from mindfed.protocol.hybrid import WORKER_FRAME_TYPES
from mindfed.server import worker_api
from mindfed.server.partials import PartialSums
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)

GET_PARTIAL = 1
HELLO = 2  # answered with b"": proves the connection (with TLS: both certificates) is accepted
PARTIAL_TIMEOUT_S = 30.0


def serve_peers(endpoint: TcpEndpoint, state: ServerState) -> None:
    """Answer peers' requests on `endpoint` from this server's state."""

    async def handle(frame: Frame) -> np.ndarray | bytes:
        if frame.type == HELLO:
            return b""
        if frame.type in WORKER_FRAME_TYPES:
            return await worker_api.answer(state, frame)
        if frame.type != GET_PARTIAL:
            raise ProtocolError(f"unknown peer request type {frame.type}")
        request = json.loads(bytes(frame.payload))
        if request.get("instance") != state.instance or request.get("iteration") != state.iteration:
            raise ProtocolError(f"no partial sums for {request}: at {state.instance} iteration {state.iteration}")
        # encoded straight from the live sums (one copy, into the wire buffer), between two folds
        return await state.accumulator.export(lambda sums, sizes, tags: PartialSums(sums, sizes, tags).encode())

    endpoint.on_request(handle)


async def fetch_partial(endpoint: TcpEndpoint, address: str, instance: str, iteration: int) -> PartialSums | None:
    """A live peer's partial sums, or None when it cannot give them (the caller falls back to Redis)."""
    payload = json.dumps({"instance": instance, "iteration": iteration}).encode()
    try:
        frame = await endpoint.request(address, GET_PARTIAL, payload, PARTIAL_TIMEOUT_S)
        # `.data` is memoryview(payload), typed (numpy's stubs declare the buffer protocol only for Python >= 3.12)
        return PartialSums.decode(frame.payload.data)
    except (NetworkError, ProtocolError, ValueError) as exc:
        logger.warning("it %d: partial sums from %s unavailable (%s); reading its durable updates", iteration,
                       address, exc)
        return None
