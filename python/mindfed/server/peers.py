"""What servers ask each other over the C++ TCP transport: the partial sums of an iteration, and the copies of update
bodies of `update_log: replica` (server/replicas.py). Hybrid workers' requests arrive on the same endpoint and are
answered by server/worker_api.py.

The aggregator asks every live server that accepted updates for its in-memory partial sums (exact, and no Redis
traffic); a server that does not answer in time is read from Redis instead (checkpoint + logged updates), so a slow or
dead peer changes the speed of the combine, never its result.

Two requests, so that no sum is copied on its way out: PARTIAL_HEAD lends the peer's live sums
(`IterationAccumulator.lend`: frozen from then on) and answers their names, sizes, data sizes and tags; then one
PARTIAL_TENSOR per name answers that live array itself, sent in place by the node. Copying 40 MB into a fresh wire
buffer cost more than the copy (its page faults), on both cores the transfers need (benchmarks.combine).
"""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np

from mindfed.errors import NetworkError, ProtocolError
from mindfed.net.endpoint import Frame, Payload, TcpEndpoint
from mindfed.protocol.hybrid import WORKER_FRAME_TYPES
from mindfed.server import worker_api
from mindfed.server.partials import PartialSums
from mindfed.server.replicas import REPLICA_FETCH, REPLICA_GET, REPLICA_PUT, REPLICA_TIMEOUT_S, REPLICA_TRIM, Key
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)

HELLO = 2  # answered with b"": proves the connection (with TLS: both certificates) is accepted
PARTIAL_HEAD = 3  # {"instance", "iteration"} -> {"names", "sizes", "data_sizes", "tags"} of the lent sums
PARTIAL_TENSOR = 4  # {"instance", "iteration", "name"} -> that sum's float32 bytes
PARTIAL_TIMEOUT_S = 30.0


def serve_peers(endpoint: TcpEndpoint, state: ServerState) -> None:
    """Answer peers' requests on `endpoint` from this server's state."""

    def checked(frame: Frame) -> dict[str, object]:
        request = json.loads(bytes(frame.payload))
        if request.get("instance") != state.instance or request.get("iteration") != state.iteration:
            raise ProtocolError(f"no partial sums for {request}: at {state.instance} iteration {state.iteration}")
        return dict(request)

    async def handle(frame: Frame) -> Payload:
        if frame.type == HELLO:
            return b""
        if frame.type in WORKER_FRAME_TYPES:
            return await worker_api.answer(state, frame)
        if frame.type in REPLICA_TYPES:
            return await answer_replica(endpoint, state, frame)
        if frame.type == PARTIAL_HEAD:
            checked(frame)
            sums, data_sizes, tags = await state.accumulator.lend()
            names = sorted(sums)
            return json.dumps({"names": names, "sizes": [int(sums[n].size) for n in names],
                               "data_sizes": {n: int(data_sizes.get(n, 0)) for n in names}, "tags": tags}).encode()
        if frame.type == PARTIAL_TENSOR:
            name = checked(frame).get("name")
            if not state.accumulator.lent:
                raise ProtocolError(f"partial sum {name!r} asked before its head")
            sums, _, _ = await state.accumulator.lend()  # the same arrays: frozen since the head
            if not isinstance(name, str) or name not in sums:
                raise ProtocolError(f"no partial sum named {name!r}")
            return sums[name]  # in place: the node holds it until written, and reset() leaves it alone
        raise ProtocolError(f"unknown peer request type {frame.type}")

    endpoint.on_request(handle)


REPLICA_TYPES = (REPLICA_PUT, REPLICA_FETCH, REPLICA_GET, REPLICA_TRIM)


async def answer_replica(endpoint: TcpEndpoint, state: ServerState, frame: Frame) -> Payload:
    """The holder's and the origin's side of server/replicas.py."""
    ask = json.loads(bytes(frame.payload))
    if frame.type == REPLICA_FETCH:  # we are the origin: the body a holder is copying, in place
        body = state.replicator.outgoing(str(ask.get("token"))) if state.replicator is not None else None
        if body is None:
            raise ProtocolError("no body is being copied under that token")
        return body
    if ask.get("instance") != state.instance:
        raise ProtocolError(f"copies of instance {ask.get('instance')!r} asked at {state.instance}")
    key: Key = (state.instance, int(ask["iteration"]), str(ask["origin"]))
    if frame.type == REPLICA_PUT:
        if state.replicator is None:  # a server without update_log replica keeps no copies: the origin uses Redis
            raise ProtocolError("this server keeps no copies (update_log is not replica)")
        if key[1] < state.iteration:
            raise ProtocolError(f"iteration {key[1]} has ended here (at {state.iteration})")
        members = await state.replicator.members()
        if members.get(key[2]) != ask.get("address"):  # an origin that joined since our last look?
            members = await state.replicator.members(fresh=True)
        if members.get(key[2]) != ask.get("address"):  # fetch only from a registered server's own address
            raise ProtocolError(f"{key[2]} is not a live server at {ask.get('address')!r}")
        copy = (await endpoint.request(str(ask["address"]), REPLICA_FETCH, json.dumps({"token": ask["token"]}).encode(),
                                       REPLICA_TIMEOUT_S)).payload
        if copy.size != int(ask["size"]):
            raise ProtocolError(f"copy for {key[2]}: {copy.size} bytes, announced {ask['size']}")
        if key[1] < state.iteration:  # it ended while the body came: the origin logs in Redis instead
            raise ProtocolError(f"iteration {key[1]} ended while its copy came")
        if "checkpoint" in ask:
            state.replicas.put_checkpoint(key, int(ask["checkpoint"]), copy)
        else:
            state.replicas.put(key, str(ask["copy"]), copy)
        return b""
    if frame.type == REPLICA_GET:
        what = f"checkpoint {ask['checkpoint']}" if "checkpoint" in ask else f"copy {ask['copy']}"
        held = state.replicas.lookup(key, ask.get("copy"), int(ask["checkpoint"]) if "checkpoint" in ask else None)
        if held is None:
            raise ProtocolError(f"no {what} for {key[2]} in iteration {key[1]}")
        return held
    state.replicas.trim(key, [str(c) for c in ask.get("copies", [])], int(ask.get("checkpoints_before", 0)))
    return b""


async def fetch_partial(endpoint: TcpEndpoint, address: str, instance: str, iteration: int) -> PartialSums | None:
    """A live peer's partial sums, or None when it cannot give them (the caller falls back to Redis).

    The sums are the received buffers themselves, writable and owned by nobody else.
    """
    ask = {"instance": instance, "iteration": iteration}
    try:
        head = json.loads(bytes((await endpoint.request(address, PARTIAL_HEAD, json.dumps(ask).encode(),
                                                        PARTIAL_TIMEOUT_S)).payload))
        names, sizes = list(head["names"]), [int(n) for n in head["sizes"]]
        frames = await asyncio.gather(*(
            endpoint.request(address, PARTIAL_TENSOR, json.dumps({**ask, "name": name}).encode(), PARTIAL_TIMEOUT_S)
            for name in names))
        sums: dict[str, np.ndarray] = {}
        for name, size, frame in zip(names, sizes, frames, strict=True):
            if frame.payload.size != 4 * size:
                raise ProtocolError(f"partial sum {name!r}: {frame.payload.size} bytes, head announced {4 * size}")
            sums[name] = frame.payload.view(np.float32)
        return PartialSums(sums, {str(k): int(v) for k, v in head["data_sizes"].items()}, list(head["tags"]))
    except (NetworkError, ProtocolError, ValueError, KeyError, TypeError) as exc:
        logger.warning("it %d: partial sums from %s unavailable (%s); reading its durable updates", iteration,
                       address, exc)
        return None
