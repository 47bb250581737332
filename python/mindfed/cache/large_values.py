"""Writing large values to Redis (partial-sum checkpoints, the published model) at the socket's speed.

redis-py hands a command to asyncio's `writelines`, which on Python 3.11 joins it into one bytes (a copy of the 40 MB
value), and the selector transport keeps what the socket did not take at once in a bytearray that every later send
shifts left (`del buffer[:n]`): about 120 ms of CPU per 40 MB value, where the socket itself needs about 10. Sent in
slices of at most SLICE_BYTES with a drain after each, the transport never holds more than one slice: each byte is
copied once (into the slice) besides the kernel's copy.

The same holds for a Lua script called with a large argument (updateModel's reservation logs the raw request body,
40 MB for a 10M-float model): `pipeline` sends such a call, and the WAIT that may follow it, the same way.

This goes through redis-py's own connection (its pool, TLS, AUTH, Sentinel's master discovery); only a Redis Cluster
client, whose connections belong to per-node pools, sends its commands the plain way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

SLICE_BYTES = 1 << 20

Command = tuple[Any, ...]


def is_large(args: Sequence[Any]) -> bool:
    """Whether a command with these arguments is worth sending in slices (one of them is at least a slice)."""
    return any(isinstance(a, (bytes, bytearray, memoryview)) and memoryview(a).nbytes >= SLICE_BYTES for a in args)


@contextlib.asynccontextmanager
async def _checked_connection(pool: Any) -> AsyncIterator[Any]:
    """A pooled connection that has just answered PING (reconnected once if it did not), dropped after any failure.

    redis-py retries a plain command on a fresh connection when its pooled one turns out dead (after a Redis restart
    the old socket takes a write and fails later). These calls are not retried: a reservation that ran but whose reply
    was lost must not run twice, so the connection is proven alive before the call instead.
    """
    conn = await pool.get_connection()
    try:
        try:
            await conn.send_command("PING", check_health=False)
            await conn.read_response()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            await conn.disconnect()
            await conn.connect()
        yield conn
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


async def _cluster_pipeline(client: Any, commands: Sequence[Command], *, transaction: bool) -> list[Any]:
    """A RedisCluster has per-node pools and no `connection_pool`: its own pipeline sends the commands whole. In a
    transaction an error reply is raised (as `transaction` does); otherwise it is returned in place (as `pipeline`)."""
    async with client.pipeline(transaction=transaction) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=transaction))


async def _send(conn: Any, commands: Sequence[Command]) -> None:
    """Every command packed once and sent in slices of at most SLICE_BYTES, each drained before the next."""
    for piece in conn.pack_commands(commands):
        view = memoryview(piece)
        for start in range(0, len(view), SLICE_BYTES):
            await conn.send_packed_command([view[start:start + SLICE_BYTES]], check_health=False)


async def pipeline(client: aioredis.Redis, commands: Sequence[Command]) -> list[Any]:
    """`commands` on one connection of `client` in one round trip, the bytes sent in slices; one raw reply per command,
    an error reply as its ResponseError (not raised: the caller knows which refusals it expects, e.g. NOSCRIPT).
    Not atomic as a group (a script is atomic on its own).

    Raises:
        redis.exceptions.RedisError, OSError: the connection failed (it is dropped).
    """
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return await _cluster_pipeline(client, commands, transaction=False)
    replies: list[Any] = []
    async with _checked_connection(pool) as conn:
        await _send(conn, commands)
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
    return replies


async def transaction(client: aioredis.Redis, commands: Sequence[Command]) -> list[Any]:
    """`MULTI`, `commands`, `EXEC` on one connection of `client`, the bytes sent in slices; the EXEC reply: one raw
    result per command (b"OK", integers; redis-py's response callbacks are not applied).

    Raises:
        redis.exceptions.RedisError: Redis refused a command (the transaction is then not applied) or the connection
            failed; OSError from the socket. The connection is dropped after any failure.
    """
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return await _cluster_pipeline(client, commands, transaction=True)
    async with _checked_connection(pool) as conn:
        await _send(conn, [("MULTI",), *commands, ("EXEC",)])
        queued_error: ResponseError | None = None
        for _ in range(len(commands) + 1):  # +OK for MULTI, +QUEUED for each command
            try:
                await conn.read_response()
            except ResponseError as exc:  # a command refused while queueing: EXEC answers EXECABORT
                queued_error = queued_error or exc
        try:
            replies = await conn.read_response()
        except ResponseError:
            raise queued_error or ResponseError("EXEC failed") from None
    if not isinstance(replies, list):
        raise ResponseError(f"EXEC answered {type(replies).__name__}, not a list")
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
