"""Second copies of accepted update bodies on a peer server (`update_log: replica`): durable without Redis taking
every body.

With the Redis log (`update_log: on`) every body goes into Redis inside the reservation's Lua call. Redis cannot take
a 40 MB body at the socket's speed (about 85 ms of its CPU per body on this machine kind, against 18 ms for the whole
upload into the server: docs/cluster.md). Here the body is copied to one live peer instead, over the node transport,
and Redis logs only a marker naming that peer. An update is acknowledged only once it is in two servers' memory (the
origin's accumulator and the holder's copy), so one server can die, either of the two, and nothing acknowledged is
lost. An origin and its holder dying in the same iteration lose that origin's updates of it (its checkpoints are on
the holder too): the Redis log's guarantee (any number of servers, as long as Redis lives) is the price of the speed,
and why this mode is a choice.

The order, at the origin, for one update:
1. `replicate` sends REPLICA_PUT (names only) to the holder, which fetches the body with REPLICA_FETCH (sent in
   place from the origin's request buffer) and keeps it; the PUT's answer means the copy is there.
2. The reservation logs `marker(holder, copy)` in the origin's write-ahead log (update_model.lua, unchanged): a
   marker in Redis always has its body on the holder, because the holder had it first. A body the holder keeps without a
   marker (refused reservation, origin dead in between) is never read, and goes when its iteration does.
3. Fold, count, answer, as with the Redis log.
4. The origin's checkpoints (server/checkpointer.py) go to the holder too (REPLICA_PUT with a checkpoint number),
   and Redis stores `checkpoint_marker(holder, n)` in the checkpoint's place, in the MULTI that trims the log; only
   then is the holder told to drop the bodies it covers and its earlier checkpoints (REPLICA_TRIM). A checkpoint runs
   as soon as the copies held for this origin pass `pressure_bytes`, so a holder keeps about that much per origin,
   plus two checkpoints; and again when a holder has left, even with nothing new folded.

If no live peer exists, or the copy fails or times out, the body (or checkpoint) goes into Redis as before, and a
checkpoint is asked for at once: what a peer that just died held is covered again within a checkpoint.

Reading (server/combine.py): a dead origin's checkpoint and log hold blobs and markers; for a marker the reader asks
the holder (REPLICA_GET), or its own `ReplicaStore` when it is the holder.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from mindfed.errors import NetworkError
from mindfed.net.endpoint import Payload, TcpEndpoint

logger = logging.getLogger(__name__)

MARKER_PREFIX = b"mindfed-replica:"
# A FlatBuffers body that began with these bytes would have a root offset of 0x646e696d (1.7 GB): no accepted update
# smaller than that can, so a logged value is either a body or a marker, never both.
REPLICA_TIMEOUT_S = 10.0
PRESSURE_MIN_BYTES = 64 << 20  # held copies per origin before a checkpoint is asked for, at least
MEMBERS_REFRESH_S = 1.0  # how stale the view of live peers may be (a dead holder is found by the failed copy)
SUSPECT_S = 10.0  # a holder whose copy failed is passed over this long (its heartbeat outlives it a while)

# Frame types of the node transport (server/peers.py answers them).
# origin -> holder: {"instance", "iteration", "origin", "address", "copy" | "checkpoint", "token", "size"} -> b""
REPLICA_PUT = 5
REPLICA_FETCH = 6  # holder -> origin: {"token"} -> the body (or checkpoint blob), in place
REPLICA_GET = 7  # reader -> holder: {"instance", "iteration", "origin", "copy" | "checkpoint"} -> the copy, in place
REPLICA_TRIM = 8  # origin -> holder: {"instance", "iteration", "origin", "copies"?, "checkpoints_before"?} -> b""

Key = tuple[str, int, str]  # (instance, iteration, origin node_id)


def marker(holder: str, copy: str) -> bytes:
    """The write-ahead log's value for an update whose body `holder` keeps as copy `copy`. Every copy has its own
    id: a second upload of the same fl_id (refused as a duplicate) must never replace or drop the accepted one's."""
    return MARKER_PREFIX + f"{holder}@{copy}".encode()


def checkpoint_marker(holder: str, seq: int) -> bytes:
    """The checkpoint's value in Redis when `holder` keeps the checkpoint numbered `seq`."""
    return MARKER_PREFIX + f"{holder}#{seq}".encode()


def _named(stored: bytes | bytearray | memoryview, sep: str) -> tuple[str, str] | None:
    """(holder, id) of a marker written with `sep` ('@' a body, '#' a checkpoint: node ids hold neither), or None
    when `stored` is the body or blob itself."""
    if bytes(stored[:len(MARKER_PREFIX)]) != MARKER_PREFIX:
        return None
    holder, found, ident = bytes(stored[len(MARKER_PREFIX):]).decode().rpartition(sep)
    return (holder, ident) if found else None


def copy_of(logged: bytes | bytearray | memoryview) -> tuple[str, str] | None:
    """(holder, copy id) a logged value names, or None when it is the body itself."""
    return _named(logged, "@")


def checkpoint_of(stored: bytes | bytearray | memoryview) -> tuple[str, int] | None:
    """(holder, number) a stored checkpoint names, or None when it is the checkpoint itself."""
    named = _named(stored, "#")
    return None if named is None else (named[0], int(named[1]))


class ReplicaStore:
    """The copies this server holds for its peers, by (instance, iteration, origin): bodies by copy id, checkpoints by
    their number. Event loop only."""

    def __init__(self) -> None:
        self._held: dict[Key, dict[str, np.ndarray]] = {}
        self._checkpoints: dict[Key, dict[int, np.ndarray]] = {}

    @property
    def nbytes(self) -> int:
        return sum(blob.nbytes for held in (self._held, self._checkpoints) for blobs in held.values()
                   for blob in blobs.values())

    def put(self, key: Key, copy: str, body: np.ndarray) -> None:
        self._held.setdefault(key, {})[copy] = body

    def get(self, key: Key, copy: str) -> np.ndarray | None:
        return self._held.get(key, {}).get(copy)

    def put_checkpoint(self, key: Key, seq: int, blob: np.ndarray) -> None:
        self._checkpoints.setdefault(key, {})[seq] = blob

    def get_checkpoint(self, key: Key, seq: int) -> np.ndarray | None:
        return self._checkpoints.get(key, {}).get(seq)

    def lookup(self, key: Key, copy: str | None = None, checkpoint: int | None = None) -> np.ndarray | None:
        """Body copy `copy`, or checkpoint number `checkpoint` when given."""
        return self.get(key, str(copy)) if checkpoint is None else self.get_checkpoint(key, checkpoint)

    def trim(self, key: Key, copies: Iterable[str], checkpoints_before: int = 0) -> None:
        """Drop the bodies of `copies` and the checkpoints numbered below `checkpoints_before`."""
        bodies = self._held.get(key, {})
        for copy in copies:
            bodies.pop(copy, None)
        checkpoints = self._checkpoints.get(key, {})
        for seq in [s for s in checkpoints if s < checkpoints_before]:
            del checkpoints[seq]
        for held in (self._held, self._checkpoints):
            if key in held and not held[key]:
                del held[key]

    def keep_only(self, instance: str, iteration: int) -> None:
        """Drop every copy of another instance or of an iteration before `iteration` (it has ended: nobody reads
        them once its model is published or its updates are dropped)."""
        for held in (self._held, self._checkpoints):
            for key in [k for k in held if k[0] != instance or k[1] < iteration]:
                del held[key]


@dataclass
class Replicator:
    """The origin's side: which peer holds the next copy, the bodies being fetched, what each holder keeps.

    Args:
        endpoint: the node transport.
        node_id: this server's node id (the origin).
        tcp_address: this server's transport address, where holders fetch bodies.
        pressure_bytes: bytes copied since the last checkpoint past which the next one is asked for.
        fetch_members: the live servers of the instance (node_id -> transport address), from Redis.
    """

    endpoint: TcpEndpoint
    node_id: str
    tcp_address: str
    pressure_bytes: int
    fetch_members: Callable[[], Awaitable[dict[str, str]]]
    checkpoint_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    failed: bool = False  # the last copy failed: its buffer may still be going out (not to be reused yet)
    _outgoing: dict[str, Payload] = field(default_factory=dict)
    _seqs: itertools.count[int] = field(default_factory=itertools.count)
    # (instance, iteration) -> copy id -> (holder, fl_id): the copies holders keep for us
    _held: dict[tuple[str, int], dict[str, tuple[str, str]]] = field(default_factory=dict)
    _since_checkpoint: int = 0  # bytes copied since the last checkpoint
    _checkpoint: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)  # the held one: holder, seq
    _members: dict[str, str] = field(default_factory=dict)
    _members_at: float = -1e9
    _suspects: dict[str, float] = field(default_factory=dict)  # holder -> when its copy failed
    _alone: bool | None = None  # no holder at the last copy (None: no copy yet); said when it changes

    def outgoing(self, token: str) -> Payload | None:
        """The body a holder fetches (REPLICA_FETCH), sent in place."""
        return self._outgoing.get(token)

    def _holder(self, members: dict[str, str]) -> tuple[str, str] | None:
        """The next live server after this one in node_id order (every origin has one holder, spread evenly),
        passing over those whose copy failed lately."""
        now = time.monotonic()
        self._suspects = {n: t for n, t in self._suspects.items() if now - t < SUSPECT_S}
        others = sorted(n for n in members if n != self.node_id and n not in self._suspects)
        if not others:
            return None
        node = next((n for n in others if n > self.node_id), others[0])
        return node, members[node]

    async def _copy(self, ask: dict[str, object], blob: Payload) -> str | None:
        """Has the next holder fetch `blob` (REPLICA_PUT, then its REPLICA_FETCH); the holder once it keeps it."""
        self.failed = False
        target = self._holder(await self.members())
        if (target is None) is not self._alone:  # said when it changes, not per update
            self._alone = target is None
            logger.log(logging.WARNING if target is None else logging.INFO, "update_log replica: %s",
                       "no live peer holds copies; Redis takes them" if target is None else f"copies go to {target[0]}")
        if target is None:
            return None
        holder, address = target
        token = secrets.token_hex(16)  # a holder can fetch only what it was told to: no guessable names
        self._outgoing[token] = blob
        ask = {**ask, "origin": self.node_id, "address": self.tcp_address, "token": token,
               "size": memoryview(blob).nbytes}  # type: ignore[arg-type]
        try:
            await self.endpoint.request(address, REPLICA_PUT, json.dumps(ask).encode(), REPLICA_TIMEOUT_S)
        except NetworkError as exc:
            logger.warning("it %s: no copy on %s (%s); Redis takes it", ask["iteration"], holder, exc)
            self.failed = True
            self._suspects[holder] = time.monotonic()  # the holder may be gone: the next copy goes elsewhere
            self.checkpoint_wanted.set()  # the copies that holder kept are covered by Redis again
            return None
        finally:
            del self._outgoing[token]
        return holder

    async def replicate(self, instance: str, iteration: int, fl_id: str, body: bytes | bytearray) -> bytes | None:
        """Copies `body` to a live peer; the marker to log in its place once the peer keeps it, or None (the caller
        logs the body in Redis)."""
        copy = secrets.token_hex(8)
        holder = await self._copy({"instance": instance, "iteration": iteration, "copy": copy}, body)
        if holder is None:
            return None
        self._held.setdefault((instance, iteration), {})[copy] = (holder, fl_id)
        self._since_checkpoint += len(body)
        if self._since_checkpoint >= self.pressure_bytes:
            self.checkpoint_wanted.set()
        return marker(holder, copy)

    async def hold_checkpoint(self, instance: str, iteration: int, blob: np.ndarray) -> bytes | None:
        """Copies a checkpoint blob to a live peer; the marker Redis stores in its place, or None (Redis takes the
        blob itself)."""
        seq = next(self._seqs)
        holder = await self._copy({"instance": instance, "iteration": iteration, "checkpoint": seq}, blob)
        return None if holder is None else checkpoint_marker(holder, seq)

    async def exposed(self, instance: str, iteration: int) -> bool:
        """Whether a copy this origin relies on (a body or its checkpoint) is on a server that is no longer live:
        the next checkpoint must then go elsewhere, even if nothing new was folded."""
        members = await self.members()
        it = (instance, iteration)
        holders = {holder for holder, _ in self._held.get(it, {}).values()}
        if it in self._checkpoint:
            holders.add(self._checkpoint[it][0])
        return any(holder not in members for holder in holders)

    async def members(self, fresh: bool = False) -> dict[str, str]:
        """The live servers (node_id -> transport address), looked up at most every MEMBERS_REFRESH_S unless
        `fresh` (a server that joined since)."""
        if fresh or time.monotonic() - self._members_at > MEMBERS_REFRESH_S:
            self._members = await self.fetch_members()
            self._members_at = time.monotonic()
        return self._members

    async def release(self, instance: str, iteration: int, logged: bytes) -> None:
        """The reservation that would have logged `logged` (a marker) was refused: its holder drops that copy."""
        named = copy_of(logged)
        entry = None if named is None else self._held.get((instance, iteration), {}).pop(named[1], None)
        if named is not None and entry is not None:
            await self._trim(instance, iteration, {entry[0]: {"copies": [named[1]]}})

    async def checkpointed(self, instance: str, iteration: int, tags: Iterable[str], marker: bytes | None) -> None:
        """A checkpoint holding `tags` is stored (Redis holds `marker`, or the blob itself when None): the holders
        drop the copies of those updates and every earlier checkpoint."""
        it = (instance, iteration)
        self._since_checkpoint = 0
        covered, held = set(tags), self._held.get(it, {})
        trims: dict[str, dict[str, object]] = {}
        for copy, (holder, fl_id) in list(held.items()):
            # covered: the checkpoint holds it; on a holder that is gone: nothing to trim, and a copy still needed
            # (reserved, not yet folded) is covered by the next checkpoint, not by that holder
            if fl_id in covered or holder not in self._members:
                del held[copy]
                if holder in self._members:
                    trims.setdefault(holder, {"copies": []})["copies"].append(copy)  # type: ignore[attr-defined]
        previous = self._checkpoint.pop(it, None)
        now = None if marker is None else checkpoint_of(marker)
        if now is not None:
            self._checkpoint[it] = now
        if previous is not None:  # below the new one's number (or all of them: Redis holds the new one)
            trims.setdefault(previous[0], {})["checkpoints_before"] = now[1] if now is not None else previous[1] + 1
        await self._trim(instance, iteration, trims)

    async def _trim(self, instance: str, iteration: int, trims: dict[str, dict[str, object]]) -> None:
        for stale in [k for k in (*self._held, *self._checkpoint) if k[0] != instance or k[1] < iteration]:
            self._held.pop(stale, None)  # an ended iteration's copies go with it on the holders
            self._checkpoint.pop(stale, None)
        for holder, trim in trims.items():  # REPLICA_TRIM per holder
            address = self._members.get(holder)
            if address is None:
                continue
            ask = {"instance": instance, "iteration": iteration, "origin": self.node_id, **trim}
            try:
                await self.endpoint.request(address, REPLICA_TRIM, json.dumps(ask).encode(), REPLICA_TIMEOUT_S)
            except NetworkError as exc:  # a dead holder dropped them anyway
                logger.debug("it %d: trimming copies on %s failed: %s", iteration, holder, exc)


async def held_copy(endpoint: TcpEndpoint | None, store: ReplicaStore, node_id: str, holder: str,
                    alive: dict[str, str], key: Key, copy: str | None = None,
                    checkpoint: int | None = None) -> np.ndarray | None:
    """What `holder` keeps for `key`'s origin (body copy `copy`, or checkpoint `checkpoint`): from our own `store`
    when we are the holder (`node_id`), over `endpoint` when it is alive, else None."""
    if holder == node_id:
        return store.lookup(key, copy, checkpoint)
    if holder in alive and endpoint is not None:
        return await fetch_copy(endpoint, alive[holder], key, copy, checkpoint)
    return None


async def fetch_copy(endpoint: TcpEndpoint, address: str, key: Key, copy: str | None = None,
                     checkpoint: int | None = None) -> np.ndarray | None:
    """Copy `copy` of a body (or checkpoint number `checkpoint`) that the server at `address` holds for `key`'s
    origin, or None."""
    ask: dict[str, object] = {"instance": key[0], "iteration": key[1], "origin": key[2]}
    ask.update({"copy": copy} if checkpoint is None else {"checkpoint": checkpoint})
    try:
        return (await endpoint.request(address, REPLICA_GET, json.dumps(ask).encode(), REPLICA_TIMEOUT_S)).payload
    except NetworkError as exc:
        logger.warning("it %d: %s on %s is unavailable: %s", key[1],
                       f"copy {copy}" if checkpoint is None else f"checkpoint {checkpoint}", address, exc)
        return None

