"""`distributed_cache.replica_acks`: an update is reserved and counted as folded only once that many replicas hold it
(Redis WAIT on the connection that wrote it). Against a real master with a real replica, and a lone master."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator

import numpy as np
import pytest
import redis
from tests.redis_ha import wait_until

from mindfed.cache.connection import target_of
from mindfed.cache.embedded import EmbeddedRedis, find_redis_server, free_port, wait_for_port
from mindfed.cache.iteration import ADMITTED, DeviceMeta, IterationCache
from mindfed.cache.keys import ROUND_UPDATE_MODEL
from mindfed.cache.large_values import SLICE_BYTES
from mindfed.cache.store import CacheStore, Ttl
from mindfed.errors import CacheError

pytestmark = pytest.mark.integration
TTL = Ttl.from_window(60_000)


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ip:port of a master with one replica in sync."""
    with EmbeddedRedis() as master:
        port = free_port()
        proc = subprocess.Popen(
            [find_redis_server(), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--replicaof", "127.0.0.1", str(master.port), "--dir", str(tmp_path_factory.mktemp("replica"))],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_port("127.0.0.1", port, 10)

            def in_sync() -> bool:
                with redis.Redis(host="127.0.0.1", port=master.port) as client:
                    return int(client.info("replication")["connected_slaves"]) == 1

            wait_until(in_sync, 10, "replica in sync")
            yield master.address
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def reserve(address: str, fl_name: str, acks: int) -> tuple[IterationCache, CacheStore]:
    store = CacheStore.connect(dataclasses.replace(target_of(address), replica_acks=acks,
                                                   replica_ack_timeout_ms=200), fl_name)
    cache = IterationCache(store, "inst", 1, TTL)
    assert (await cache.admit(DeviceMeta("dev0", 3, 1), 10, 1))[0] == ADMITTED
    return cache, store


async def test_an_update_on_a_replica_is_reserved_and_counted(replicated: str, fl_name: str) -> None:
    # Prepare
    cache, store = await reserve(replicated, fl_name, acks=1)
    try:
        # Execute
        code, count, meta = await cache.reserve_update("dev0", "node-a", 10, 2, True, b"body")
        folded = await cache.mark_aggregated("node-a")
        # Assert
        assert (code, count, folded) == (ADMITTED, 1, 1)
        assert meta is not None
        assert meta.data_size == 3
        assert await store.redis.sismember(cache.keys.update_model_clients, "dev0")
    finally:
        await store.close()


async def test_an_update_no_replica_took_is_undone_and_refused(redis_address: str, fl_name: str) -> None:
    # Prepare: the suite's Redis has no replica
    cache, store = await reserve(redis_address, fl_name, acks=1)
    try:
        # Execute
        with pytest.raises(CacheError, match=r"reservation .* reached 0 of the 1 replicas .* within 200 ms"):
            await cache.reserve_update("dev0", "node-a", 10, 2, True, b"body")
        with pytest.raises(CacheError, match=r"folded count .* reached 0 of the 1 replicas"):
            await cache.mark_aggregated("node-a")
        # Assert: the reservation and its log are gone, the device may upload again
        assert not await store.redis.sismember(cache.keys.update_model_clients, "dev0")
        assert await store.redis.hlen(cache.keys.wal("node-a")) == 0
        assert int(await store.redis.hget(cache.keys.counts, ROUND_UPDATE_MODEL) or 0) == 0
        assert not await store.redis.sismember(cache.keys.reserved("node-a"), "dev0")
    finally:
        await store.close()


async def test_without_replica_acks_a_lone_master_takes_the_update(redis_address: str, fl_name: str) -> None:
    cache, store = await reserve(redis_address, fl_name, acks=0)
    try:
        assert (await cache.reserve_update("dev0", "node-a", 10, 2, True, b"body"))[0] == ADMITTED
        assert await cache.mark_aggregated("node-a") == 1
    finally:
        await store.close()


async def test_a_server_is_warned_when_the_replicas_asked_for_are_missing(replicated: str, redis_address: str,
                                                                          fl_name: str) -> None:
    _, with_replica = await reserve(replicated, fl_name, acks=1)
    _, lone = await reserve(redis_address, fl_name, acks=1)
    try:
        assert await with_replica.replica_shortfall() == ""
        assert "has 0 connected replica(s) but distributed_cache.replica_acks asks for 1" in \
            await lone.replica_shortfall()
    finally:
        await with_replica.close()
        await lone.close()


async def test_a_large_logged_body_is_reserved_and_logged_whole_with_a_replica_ack(replicated: str,
                                                                                   fl_name: str) -> None:
    # Prepare: a 10M-float update's size class (several slices), bytes that differ from their neighbours'
    body = np.random.default_rng(5).integers(0, 256, int(3.5 * SLICE_BYTES), dtype=np.uint8).tobytes()
    cache, store = await reserve(replicated, fl_name, acks=1)
    try:
        # Execute
        code, count, meta = await cache.reserve_update("dev0", "node-a", 10, 2, True, body)
        logged = await store.binary.hget(cache.keys.wal("node-a"), "dev0")
    finally:
        await store.close()
    # Assert
    assert (code, count) == (ADMITTED, 1)
    assert meta is not None
    assert meta.data_size == 3
    assert logged == body


async def test_a_large_call_reloads_the_script_redis_lost(redis_address: str, fl_name: str) -> None:
    # Prepare: Redis forgets every script (as after a restart) before a large call and before a small one
    body = b"\x01" * (2 * SLICE_BYTES)
    cache, store = await reserve(redis_address, fl_name, acks=0)
    try:
        assert (await cache.admit(DeviceMeta("dev1", 4, 1), 10, 1))[0] == ADMITTED
        await store.redis.script_flush()
        # Execute
        first = await cache.reserve_update("dev0", "node-a", 10, 2, True, body)
        await store.redis.script_flush()
        second = await cache.reserve_update("dev1", "node-a", 10, 2, True, body)
        logged = await store.binary.hgetall(cache.keys.wal("node-a"))
    finally:
        await store.close()
    # Assert
    assert (first[0], first[1], second[0], second[1]) == (ADMITTED, 1, ADMITTED, 2)
    assert logged == {b"dev0": body, b"dev1": body}
