"""The redis-py clients of a `RedisTarget`: one Redis, a Sentinel set's master, or a Redis Cluster.

Every form keeps the same bound on connections: a caller waits up to POOL_WAIT_S for a free one instead of opening
its own (or failing at once), so a burst of devices never exhausts Redis' maxclients. One Redis and a Sentinel master
get redis-py's BlockingConnectionPool (for Sentinel: mixed into its SentinelConnectionPool); redis-py's cluster
client has a pool per node that raises when full, so the store admits at most POOL_CONNECTIONS calls at once (`gate`)
and each node's pool is that size.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisClusterException

from mindfed.cache.connection import RedisTarget
from mindfed.cache.ha_url import Topology
from mindfed.errors import ConfigError

# A bounded pool that makes callers wait for a free connection: with an unbounded one every concurrent request opens
# its own, and a thousand devices in flight exhaust Redis' maxclients (or the fd limit) and get the safemode text
# although Redis may already have counted them. Commands are short; 64 connections keep Redis busy on 2 cores.
POOL_CONNECTIONS = 64
POOL_WAIT_S = 30.0  # a request waiting longer than this for a connection is answered safemode
HEALTH_CHECK_S = 5


class BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """redis-py's Sentinel pool (finds the master through the sentinels, drops connections to a demoted one) with the
    BlockingConnectionPool's wait for a free connection."""


@dataclass(frozen=True, slots=True)
class RedisClients:
    """The two clients of a store (text replies for coordination, bytes for update logs, partial sums and models).

    Attributes:
        text: decode_responses=True.
        binary: decode_responses=False.
        gate: the bound on concurrent calls, where the pool itself does not wait (a cluster); None otherwise.
        sentinels: the Sentinel managers to close with the clients.
    """

    text: aioredis.Redis
    binary: aioredis.Redis
    gate: asyncio.Semaphore | None = None
    sentinels: tuple[Sentinel, ...] = ()

    async def aclose(self) -> None:
        await self.text.aclose()
        if self.binary is not self.text:
            await self.binary.aclose()
        for sentinel in self.sentinels:
            await sentinel.aclose()


def clients_for(target: RedisTarget, timeout_s: float) -> RedisClients:
    """Both clients of `target`; connections open lazily, so this never blocks.

    Raises:
        ConfigError: a Redis Cluster with a redis-py whose async cluster client has no transactions (the durable
            checkpoint is one MULTI).
    """
    if target.topology == Topology.SENTINEL:
        text_sentinel, binary_sentinel = _Sentinel(target, timeout_s), _Sentinel(target, timeout_s)
        return RedisClients(_master(text_sentinel, target, timeout_s, decode=True),
                            _master(binary_sentinel, target, timeout_s, decode=False),
                            sentinels=(text_sentinel, binary_sentinel))
    if target.topology == Topology.CLUSTER:
        return RedisClients(_cluster(target, timeout_s, decode=True), _cluster(target, timeout_s, decode=False),
                            gate=asyncio.Semaphore(POOL_CONNECTIONS))
    return RedisClients(_single(target, timeout_s, decode=True), _single(target, timeout_s, decode=False))


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2)


def _single(target: RedisTarget, timeout_s: float, *, decode: bool) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool(
        **target.settings, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=_retry(),
        decode_responses=decode, health_check_interval=HEALTH_CHECK_S, max_connections=POOL_CONNECTIONS,
        timeout=POOL_WAIT_S)
    return aioredis.Redis.from_pool(pool)


class _Sentinel(Sentinel):
    """redis-py's Sentinel manager over sentinel clients made from our settings: its own constructor takes no
    connection class, so a TLS server name (NamedSSLConnection) could not reach the sentinels."""

    def __init__(self, target: RedisTarget, timeout_s: float) -> None:
        super().__init__([], sentinel_kwargs={})  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8
        self.sentinels = [
            aioredis.Redis.from_pool(aioredis.ConnectionPool(
                host=node.host, port=node.port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                **target.sentinel_settings))
            for node in target.nodes]


def _master(sentinel: Sentinel, target: RedisTarget, timeout_s: float, *, decode: bool) -> aioredis.Redis:
    client = sentinel.master_for(
        target.master, redis_class=aioredis.Redis, connection_pool_class=BlockingSentinelPool,
        **target.settings, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=_retry(),
        decode_responses=decode, health_check_interval=HEALTH_CHECK_S, max_connections=POOL_CONNECTIONS,
        timeout=POOL_WAIT_S)
    return cast(aioredis.Redis, client)


def _cluster(target: RedisTarget, timeout_s: float, *, decode: bool) -> aioredis.Redis:
    client = RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in target.nodes], **target.settings,
        socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=decode,
        max_connections=POOL_CONNECTIONS, retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=3),
        health_check_interval=HEALTH_CHECK_S)
    try:
        client.pipeline(transaction=True)
    except RedisClusterException as exc:
        raise ConfigError(f"{target.display}: this redis-py's cluster client has no transactions ({exc}); "
                          "Redis Cluster needs a newer redis package") from None
    # RedisCluster is no subclass of Redis but offers every command, pipeline, transaction and script the store
    # sends (all keys of one job share one hash slot, cache/keys.py); one type keeps the callers one code path.
    return cast(aioredis.Redis, client)
