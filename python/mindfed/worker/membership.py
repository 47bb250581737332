"""A hybrid worker as a cluster member (spec §1.3, §1.5): its id, its registration and heartbeat in Redis, and what it
reads there about the job (the instance and its status).

The heartbeat runs every second on the worker's loop (worker/loop_thread.py), beside training; a worker that dies
drops out of the scheduler's /state when its heartbeat key expires (`heartbeat_ttl_s`, 10 s as MindSpore), one that
stops removes its entry at once. When the scheduler starts a new instance the worker re-registers under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import datetime

from mindfed.cache.store import CacheStore, InstanceStatus, Ttl
from mindfed.cache.workers import register_worker, unregister_worker
from mindfed.errors import CacheError

logger = logging.getLogger(__name__)

HEARTBEAT_PERIOD_S = 1.0


def make_worker_id() -> str:
    """MindSpore's worker id: `worker_fl_{local time %Y-%m-%d-%H:%M:%S.mmm.uuu}::{rand 10000..99999}`."""
    stamp = datetime.now().strftime("%Y-%m-%d-%H:%M:%S.%f")
    return f"worker_fl_{stamp[:-3]}.{stamp[-3:]}::{random.randint(10000, 99999)}"


class WorkerMembership:
    """Registration and heartbeat of one worker; the instance and status it last read.

    Args:
        store: the job's store (the worker's own connection pool).
        ttl: the TTL policy of the job.
        heartbeat_ttl_s: lifetime of the heartbeat key.
        worker_id: the id to register (default: a fresh MindSpore-style one).
    """

    def __init__(self, store: CacheStore, ttl: Ttl, heartbeat_ttl_s: int = 10, worker_id: str | None = None) -> None:
        self.store = store
        self.worker_id = worker_id or make_worker_id()
        self._ttl = ttl
        self._heartbeat_ttl_s = heartbeat_ttl_s
        self.instance: str | None = None
        self.status: InstanceStatus | None = None
        self._task: asyncio.Task[None] | None = None

    async def join(self, wait_s: float) -> None:
        """Register once the job has an instance (its first server created it); then beat in the background.

        Raises:
            CacheError: no instance within `wait_s` (no server has started), or Redis cannot be reached.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not await self._sync():
            if loop.time() > deadline:
                raise CacheError(f"no instance of job {self.store.job.fl_name} in the distributed cache at "
                                 f"{self.store.address} within {wait_s:.0f} s: is a server running?")
            await asyncio.sleep(0.2)
        logger.info("worker %s registered in instance %s", self.worker_id, self.instance)
        self._task = loop.create_task(self._beat(), name="worker-heartbeat")

    async def _sync(self) -> bool:
        """Register under the current instance (moving with a new one) and read its status; False without one."""
        instance = await self.store.current_instance()
        if instance is None:
            return False
        if self.instance is not None and instance != self.instance:
            logger.info("worker %s: new instance %s (was %s)", self.worker_id, instance, self.instance)
            with contextlib.suppress(CacheError):
                await unregister_worker(self.store, self.instance, self.worker_id)
        self.instance = instance
        await register_worker(self.store, instance, self.worker_id, self._heartbeat_ttl_s, self._ttl)
        self.status = await self.store.read_status(instance)
        return True

    async def _beat(self) -> None:
        lost = False
        while True:
            await asyncio.sleep(HEARTBEAT_PERIOD_S)
            try:
                await self._sync()
            except CacheError as exc:
                if not lost:
                    logger.warning("worker %s: heartbeat failed, retrying: %s", self.worker_id, exc)
                lost = True
                continue
            if lost:
                logger.info("worker %s: distributed cache reachable again", self.worker_id)
            lost = False

    async def refresh(self) -> InstanceStatus | None:
        """Read the instance and its status now (not waiting for the next beat)."""
        await self._sync()
        return self.status

    async def leave(self) -> None:
        """Stop beating and remove this worker from the instance (the scheduler's /state drops it at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.instance is not None:
            with contextlib.suppress(CacheError):
                await unregister_worker(self.store, self.instance, self.worker_id)
            logger.info("worker %s left instance %s", self.worker_id, self.instance)
