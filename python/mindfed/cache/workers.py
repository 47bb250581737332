"""Hybrid workers' membership in Redis (spec §1.3, §1.5): MindSpore's `worker:Hash` (id → id) and one heartbeat key per
worker with a TTL. A worker that stops removes both; one that dies drops out when its heartbeat expires, and readers
delete its hash entry then, as they do for servers.
"""

from __future__ import annotations

from mindfed.cache.store import CacheStore, Ttl, decoded


async def register_worker(store: CacheStore, instance: str, worker_id: str, heartbeat_s: int, ttl: Ttl) -> None:
    """Register (or refresh) `worker_id` under `instance`; the hash gets the config TTL, the heartbeat `heartbeat_s`."""
    inst = store.job.instance(instance)
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.hset(inst.workers, worker_id, worker_id)
        pipe.expire(inst.workers, ttl.config_s)
        pipe.set(inst.worker_heartbeat(worker_id), worker_id, ex=heartbeat_s)
        await store.run("register worker", pipe.execute())


async def unregister_worker(store: CacheStore, instance: str, worker_id: str) -> None:
    inst = store.job.instance(instance)
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.hdel(inst.workers, worker_id)
        pipe.delete(inst.worker_heartbeat(worker_id))
        await store.run("unregister worker", pipe.execute())


async def alive_workers(store: CacheStore, instance: str) -> list[str]:
    """Ids of the workers whose heartbeat key still exists, sorted; dead entries are removed from the hash."""
    inst = store.job.instance(instance)
    ids = sorted(await store.run("list workers", decoded(store.redis.hkeys(inst.workers))))
    if not ids:
        return []
    beats = await store.run("worker heartbeats", store.redis.mget([inst.worker_heartbeat(i) for i in ids]))
    dead = [i for i, beat in zip(ids, beats, strict=True) if beat is None]
    if dead:
        await store.run("drop dead workers", store.redis.hdel(inst.workers, *dead))
    return [i for i in ids if i not in dead]
