"""Large values written in slices (cache/large_values.py), against a real Redis."""

from __future__ import annotations

import numpy as np
import pytest
from redis.exceptions import ResponseError

from mindfed.cache.large_values import SLICE_BYTES, transaction
from mindfed.cache.store import CacheStore

pytestmark = pytest.mark.integration


async def test_a_value_of_many_slices_arrives_whole_in_one_transaction(redis_address: str, fl_name: str) -> None:
    # Prepare: a value of 5.5 slices whose bytes all differ from their neighbours'
    store = CacheStore.connect(redis_address, fl_name)
    value = np.random.default_rng(3).integers(0, 256, int(5.5 * SLICE_BYTES), dtype=np.uint8)
    key, tags = f"{fl_name}:blob", f"{fl_name}:tags"
    try:
        # Execute
        replies = await transaction(store.binary, [("SET", key, memoryview(value), "EX", 60),
                                                   ("SADD", tags, "a", "b"), ("EXPIRE", tags, 60)])
        stored = await store.binary.get(key)
        members = await store.binary.smembers(tags)
    finally:
        await store.binary.delete(key, tags)
        await store.close()
    # Assert
    assert replies == [b"OK", 2, 1]  # raw replies: no redis-py response callbacks
    assert stored == value.tobytes()
    assert members == {b"a", b"b"}


async def test_a_refused_command_applies_nothing_and_the_pool_stays_usable(redis_address: str, fl_name: str) -> None:
    # Prepare: a string key that HSET must refuse
    store = CacheStore.connect(redis_address, fl_name)
    key, other = f"{fl_name}:string", f"{fl_name}:other"
    await store.binary.set(key, b"x")
    try:
        # Execute: the refusal comes at EXEC time (WRONGTYPE), after SET other was queued
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await transaction(store.binary, [("SET", other, b"y" * (2 * SLICE_BYTES)), ("HSET", key, "f", "v")])
        # unknown commands are refused while queueing: EXECABORT, nothing applied
        with pytest.raises(ResponseError):
            await transaction(store.binary, [("SET", other, b"z"), ("NOSUCHCOMMAND", key)])
        after = await store.binary.get(other)
        ping = await store.binary.ping()
    finally:
        await store.binary.delete(key, other)
        await store.close()
    # Assert: a MULTI runs every queued command even when one fails at EXEC (Redis has no rollback), so the first
    # transaction's SET stands; the aborted one changed nothing
    assert after == b"y" * (2 * SLICE_BYTES)
    assert ping is True
