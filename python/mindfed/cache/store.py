"""The one module that talks to Redis: every command mindfed sends goes through `CacheStore`.

Multi-key transitions are Lua scripts (`scripts/*.lua`), so a check and the increment it guards are atomic.
Connection failures are retried briefly and then raised as `CacheError`; callers turn that into the safemode text
(spec §3.3) and the server's tick loop reconnects by itself when Redis returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar, cast, overload

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError

from mindfed.cache import keys as K
from mindfed.cache.clients import POOL_WAIT_S, RedisClients, clients_for
from mindfed.cache.connection import RedisTarget, access_problem, retry_hint, target_of, tls_refusal
from mindfed.cache.large_values import is_large, pipeline
from mindfed.errors import CacheError

logger = logging.getLogger(__name__)
T = TypeVar("T")

# runningState values (spec §4.7).
RUNNING, DISABLED, FINISHED, STOPPED = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """The instance status hash (spec §4.5): current iteration and running state."""

    iteration: int
    running_state: int
    last_success: bool = True
    last_result: str = ""

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> InstanceStatus | None:
        if K.FIELD_ITERATION not in fields:
            return None
        return cls(
            iteration=int(fields[K.FIELD_ITERATION]),
            running_state=int(fields.get(K.FIELD_RUNNING_STATE, RUNNING)),
            last_success=fields.get(K.FIELD_LAST_SUCCESS, "1") == "1",
            last_result=fields.get(K.FIELD_LAST_RESULT, ""),
        )


@dataclass(frozen=True, slots=True)
class Ttl:
    """TTL policy of spec §5.3, from `global_iteration_time_window`."""

    config_s: int
    iteration_s: int

    @classmethod
    def from_window(cls, global_iteration_time_window_ms: int) -> Ttl:
        g = global_iteration_time_window_ms // 1000
        return cls(config_s=g + 7 * 86400, iteration_s=g + 1800)


@overload
def decoded(reply: Awaitable[bytes | str | None]) -> Awaitable[str | None]: ...
@overload
def decoded(reply: Awaitable[list[bytes | str]]) -> Awaitable[list[str]]: ...
@overload
def decoded(reply: Awaitable[list[bytes | str | None]]) -> Awaitable[list[str | None]]: ...
@overload
def decoded(reply: Awaitable[dict[bytes | str, bytes | str]]) -> Awaitable[dict[str, str]]: ...
def decoded(reply: Awaitable[Any]) -> Awaitable[Any]:
    """A reply of the text client (`CacheStore.redis`), typed as the str it is; the reply itself is untouched.

    redis-py types every reply `bytes | str` because the client's `decode_responses` is a runtime setting; the text
    client is made with `decode_responses=True` (`CacheStore.connect`), so its replies are str. Never wrap a reply of
    the binary client in this.
    """
    return reply


def _load_script(name: str) -> str:
    return resources.files("mindfed.cache").joinpath("scripts", name).read_text(encoding="utf-8")


class CacheStore:
    """Async facade over one Redis connection pool, bound to one job (`fl_name`).

    Not tied to an instance: the instance name is an argument, because a new instance can start at any time.
    Safe to share between coroutines of one event loop.
    """

    def __init__(self, clients: RedisClients, fl_name: str, target: RedisTarget) -> None:
        self._clients = clients
        self._r = clients.text
        self._target = target
        self._bin = clients.binary
        self.address = target.display
        self.job = K.JobKeys(fl_name)
        self._scripts = {
            name: self._r.register_script(_load_script(f"{name}.lua"))
            for name in ("start_fl_job", "update_model", "mark_aggregated", "finish_iteration", "claim_instance",
                         "init_status", "repair_server", "compare_and_set", "release_update", "pw_exchange_keys",
                         "pw_join", "pw_share_secrets", "pw_reconstruct", "pw_push_list_sign", "pw_get_list_sign")
        }

    @classmethod
    def connect(cls, target: RedisTarget | str, fl_name: str, timeout_s: float = 2.0) -> CacheStore:
        """Make a store for a `RedisTarget` (`cache.connection.target_for`) or a plain address (`ip:port`,
        `unix:/path`, a Redis URL; credentials from the environment as `target_of` reads them).

        Connections open lazily, so this never blocks; `probe()` tells a refused login or TLS handshake apart.
        """
        if isinstance(target, str):
            target = target_of(target)
        return cls(clients_for(target, timeout_s), fl_name, target)

    @property
    def target(self) -> RedisTarget:
        """Where this store connects (its topology, the replica acknowledgements asked for)."""
        return self._target

    @property
    def redis(self) -> aioredis.Redis:
        """The client, for the other modules of this package only."""
        return self._r

    @property
    def binary(self) -> aioredis.Redis:
        """A client that returns bytes (update logs, partial sums, models); this package only."""
        return self._bin

    def script(self, name: str) -> AsyncScript:
        """A registered Lua script of `scripts/` (redis-py reloads it after a Redis restart)."""
        return self._scripts[name]

    async def close(self) -> None:
        await self._clients.aclose()

    async def run(self, what: str, awaitable: Awaitable[T]) -> T:
        """Await a Redis call, turning every Redis or socket failure into `CacheError` naming `what`."""
        try:
            async with self._admitted(what, awaitable):
                return await awaitable
        except (RedisError, OSError) as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # redis-py turns a cancellation mid-command into a connection error; the cancel must win
                raise asyncio.CancelledError from exc
            raise CacheError(f"redis {what} on {self.address} failed: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _admitted(self, what: str, pending: Awaitable[Any]) -> AsyncIterator[None]:
        """Hold one of the gate's places while a call runs (a cluster's bound on connections, cache/clients.py).
        A call made inside another one (a transaction's body) runs in its place, so nesting cannot deadlock."""
        gate = self._clients.gate
        if gate is None or _INSIDE_CALL.get():
            yield
            return
        try:
            async with asyncio.timeout(POOL_WAIT_S):
                await gate.acquire()
        except TimeoutError:
            if inspect.iscoroutine(pending):
                pending.close()  # never sent; closed so it is not reported as never awaited
            raise CacheError(f"redis {what} on {self.address}: no connection free within {POOL_WAIT_S} s") from None
        token = _INSIDE_CALL.set(True)
        try:
            yield
        finally:
            _INSIDE_CALL.reset(token)
            gate.release()

    async def replicated(self, what: str, script: str, keys: list[str], args: list[Any]) -> tuple[Any, int]:
        """Run a script, then `WAIT` for `target.replica_acks` replicas on the same connection (WAIT covers the writes
        of the connection it is sent on, so both go in one pipeline); returns (the script's reply, replicas that
        acknowledged). Without replica acknowledgements asked for, the script alone runs and the count is 0.

        Raises:
            CacheError: Redis failed (the script may or may not have run, as for any failed call).
        """
        acks, timeout_ms = self._target.replica_acks, self._target.replica_ack_timeout_ms
        if is_large(args):
            return await self.run(what, self._sliced_script(script, keys, args))
        if not acks:
            return await self.run(what, self.script(script)(keys=keys, args=args)), 0

        async def both() -> tuple[Any, int]:
            async with self._r.pipeline(transaction=False) as pipe:
                await self.script(script)(keys=keys, args=args, client=pipe)  # queued, sent by execute()
                pipe.wait(acks, timeout_ms)
                reply, replicas = await pipe.execute()
            return reply, int(replicas)

        return await self.run(what, both())

    async def _sliced_script(self, name: str, keys: list[str], args: list[Any]) -> tuple[Any, int]:
        """`replicated` for a call with a large argument: EVALSHA (and WAIT) sent in slices (cache/large_values.py),
        the script loaded and the call sent again if Redis lost it (a restart), as redis-py's Script does."""
        script, acks = self.script(name), self._target.replica_acks
        commands: list[tuple[Any, ...]] = [("EVALSHA", script.sha, len(keys), *keys, *args)]
        if acks:
            commands.append(("WAIT", acks, self._target.replica_ack_timeout_ms))
        replies = await pipeline(self._r, commands)
        if isinstance(replies[0], NoScriptError):
            await self._r.script_load(script.script)
            replies = await pipeline(self._r, commands)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies[0], int(replies[1]) if acks else 0

    async def replica_shortfall(self) -> str:
        """"" when Redis has the replicas `replica_acks` asks for (or none is asked for), else a warning saying how
        many are connected: until enough are back every update is answered safemode.

        Raises:
            CacheError: Redis failed.
        """
        acks = self._target.replica_acks
        if not acks:
            return ""
        info = await self.run("read replication info", self._r.info("replication"))
        connected = int(info.get("connected_slaves", 0))
        if connected >= acks:
            return ""
        return (f"Redis at {self.address} has {connected} connected replica(s) but distributed_cache.replica_acks "
                f"asks for {acks}: updates are answered safemode until enough replicas are back")

    async def ping(self) -> bool:
        """True when Redis answers; never raises."""
        try:
            return bool(await self._r.ping())
        except (RedisError, OSError):
            return False

    async def probe(self) -> str:
        """"" when Redis answers, else why not while it may still come (not listening yet, restarting).

        Raises:
            CacheAccessError: Redis refuses this client for good: "Redis authentication failed", an ACL refusal,
                "Redis TLS handshake failed: certificate verify failed"; waiting would only hang.
        """
        for attempt in range(TLS_RESET_RETRIES + 1):
            try:
                await self._r.ping()
            except (RedisError, OSError) as exc:
                refused = access_problem(exc, self._target)
                if refused is not None:
                    raise refused from None  # the chain holds nothing more for the operator, and no secret leaks
                # Under TLS 1.3 a server refusing our certificate says so after the handshake; the alert sometimes
                # loses the race with the reset that follows it, so a reset is asked again before it counts.
                if self._target.tls and "reset" in str(exc).lower():
                    if attempt < TLS_RESET_RETRIES:
                        continue
                    refused = await tls_refusal(self._target)  # a connection that only listens gets the alert
                    if refused is not None:
                        raise refused from None
                return retry_hint(str(exc) or type(exc).__name__, self._target)
            return ""
        return ""

    # -- instance -------------------------------------------------------------------------------------------------

    async def claim_instance(self, candidate: str, ttl: Ttl) -> str:
        """The instance name in force: the existing one, or `candidate` when the job has none."""
        return str(await self.run("claim instance", self.script("claim_instance")(
            keys=[self.job.instance_name], args=[candidate, ttl.config_s])))

    async def current_instance(self) -> str | None:
        return await self.run("get instance", decoded(self._r.get(self.job.instance_name)))

    async def init_status(self, instance: str, iteration: int, running_state: int, ttl: Ttl) -> InstanceStatus:
        """Create the status hash unless it exists; return what is in force."""
        flat = await self.run("init status", self.script("init_status")(
            keys=[self.job.instance(instance).status], args=[iteration, running_state, ttl.config_s]))
        status = InstanceStatus.from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
        assert status is not None  # the script just wrote it
        return status

    async def read_status(self, instance: str) -> InstanceStatus | None:
        """The status hash, or None when it is gone (Redis restarted or flushed)."""
        return InstanceStatus.from_hash(await self.run("read status", decoded(self._r.hgetall(
            self.job.instance(instance).status))))

    async def finish_iteration(self, instance: str, iteration: int, success: bool, reason: str,
                               fl_iteration_num: int) -> bool:
        """Compare-and-set the move from `iteration` to `iteration + 1`; True if this call made it."""
        moved = await self.run("finish iteration", self.script("finish_iteration")(
            keys=[self.job.instance(instance).status],
            args=[iteration, "1" if success else "0", reason, fl_iteration_num]))
        return bool(moved)

    async def set_running_state(self, instance: str, state: int) -> None:
        await self.run("set running state", self._r.hset(
            self.job.instance(instance).status, K.FIELD_RUNNING_STATE, state))

    async def publish_hyper_params(self, instance: str, params: Mapping[str, Any], ttl: Ttl) -> dict[str, Any]:
        """First writer wins (spec §2.10); returns the parameters in force."""
        key = self.job.instance(instance).hyper_params
        await self.run("set hyper params", self._r.set(key, json.dumps(params, sort_keys=True), nx=True,
                                                         ex=ttl.config_s))
        text = await self.run("get hyper params", self._r.get(key))
        return dict(json.loads(text)) if text else dict(params)

    async def publish_pw_prime(self, candidate: bytes) -> bytes:
        """The cluster's Shamir prime: `candidate` if none is set yet, else the one already published."""
        key = self.job.pw_prime
        await self.run("set pw prime", self._bin.set(key, candidate, nx=True))
        value = await self.run("get pw prime", self._bin.get(key))
        return candidate if value is None else bytes(cast(bytes, value))

    async def read_pw_prime(self) -> bytes | None:
        value = await self.run("get pw prime", self._bin.get(self.job.pw_prime))
        return None if value is None else bytes(cast(bytes, value))

    async def expire_instance(self, instance: str, release_s: int = 30) -> None:
        """Let a replaced instance's status and hyper-parameters expire (spec §5.2)."""
        inst = self.job.instance(instance)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.expire(inst.status, release_s)
            pipe.expire(inst.hyper_params, release_s)
            await self.run("expire old instance", pipe.execute())

    async def read_hyper_params(self, instance: str) -> dict[str, Any]:
        """The hyper-parameters of `instance` ({} when none are stored)."""
        text = await self.run("get hyper params", self._r.get(self.job.instance(instance).hyper_params))
        return dict(json.loads(text)) if text else {}

    async def refresh(self, instance: str, iteration: int, ttl: Ttl) -> None:
        """Keep long-lived keys alive (MindSpore refreshes them every tick)."""
        inst = self.job.instance(instance)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.expire(self.job.instance_name, ttl.config_s)
            pipe.expire(inst.status, ttl.config_s)
            pipe.expire(inst.hyper_params, ttl.config_s)
            for key in inst.iteration(iteration).all_keys():
                pipe.expire(key, ttl.iteration_s)
            await self.run("refresh ttl", pipe.execute())

    # -- membership -----------------------------------------------------------------------------------------------

    async def register_server(self, instance: str, node_id: str, tcp_address: str, heartbeat_s: int = 10) -> None:
        inst = self.job.instance(instance)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hset(inst.servers, node_id, tcp_address)
            pipe.set(inst.server_heartbeat(node_id), tcp_address, ex=heartbeat_s)
            await self.run("register server", pipe.execute())

    async def acquire_join_lock(self, instance: str, node_id: str, timeout_s: float, lease_s: int = 60) -> None:
        """Wait for the instance's registration lock (MindSpore: `server:regLock:String`, 60 s lease)."""
        key = self.job.instance(instance).registration_lock
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await self.run("join lock", self._r.set(key, node_id, nx=True, ex=lease_s)):
            if asyncio.get_running_loop().time() > deadline:
                raise CacheError(f"join lock {key} held by another server for over {timeout_s} s")
            await asyncio.sleep(0.05)

    async def release_join_lock(self, instance: str, node_id: str) -> None:
        key = self.job.instance(instance).registration_lock
        if await self.run("read join lock", self._r.get(key)) == node_id:
            await self.run("release join lock", self._r.delete(key))

    async def unregister_server(self, instance: str, node_id: str) -> None:
        inst = self.job.instance(instance)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hdel(inst.servers, node_id)
            pipe.delete(inst.server_heartbeat(node_id))
            await self.run("unregister server", pipe.execute())

    async def fresh_servers(self, instance: str, heartbeat_ttl_s: int, slack_s: float = 1.5) -> set[str]:
        """Servers whose heartbeat was refreshed within the last `slack_s` (a killed one drops out at once)."""
        inst = self.job.instance(instance)
        ids = sorted(await self.run("list servers", decoded(self._r.hkeys(inst.servers))))
        if not ids:
            return set()
        async with self._r.pipeline(transaction=False) as pipe:
            for node in ids:
                pipe.pttl(inst.server_heartbeat(node))
            ttls = await self.run("heartbeat ttls", pipe.execute())
        floor_ms = (heartbeat_ttl_s - slack_s) * 1000
        return {node for node, ttl in zip(ids, ttls, strict=True) if ttl is not None and ttl > floor_ms}

    async def alive_servers(self, instance: str) -> dict[str, str]:
        """node_id → tcp address of servers whose heartbeat key still exists; dead entries are removed."""
        inst = self.job.instance(instance)
        members: dict[str, str] = await self.run("list servers", decoded(self._r.hgetall(inst.servers)))
        if not members:
            return {}
        ids = sorted(members)
        beats = await self.run("heartbeats", self._r.mget([inst.server_heartbeat(i) for i in ids]))
        dead = [i for i, beat in zip(ids, beats, strict=True) if beat is None]
        if dead:
            await self.run("drop dead servers", self._r.hdel(inst.servers, *dead))
        return {i: members[i] for i in ids if i not in dead}

    # -- unsupervised evaluation (spec §12) ------------------------------------------------------------------------

    async def push_unsupervised(self, instance: str, fl_id: str, vector: list[float], keep: int,
                                ttl_s: int) -> None:
        """Add a device's eval vector to the sliding window of the latest `keep` devices."""
        key = self.job.instance(instance).unsupervised_items
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.lpush(key, json.dumps({"fl_id": fl_id, "eval_data": vector}))
            pipe.ltrim(key, 0, max(keep, 1) - 1)
            pipe.expire(key, ttl_s)
            await self.run("push unsupervised item", pipe.execute())

    async def unsupervised_vectors(self, instance: str, count: int) -> list[list[float]]:
        """The latest `count` eval vectors (those of the most common length, so they stack)."""
        raw = await self.run("read unsupervised items", self._r.lrange(
            self.job.instance(instance).unsupervised_items, 0, max(count, 1) - 1))
        vectors = [list(map(float, json.loads(item)["eval_data"])) for item in raw]
        if not vectors:
            return []
        lengths = [len(v) for v in vectors]
        common = max(set(lengths), key=lengths.count)
        return [v for v in vectors if len(v) == common]


TLS_RESET_RETRIES = 3  # see probe()
_INSIDE_CALL = contextvars.ContextVar("mindfed_inside_cache_call", default=False)
