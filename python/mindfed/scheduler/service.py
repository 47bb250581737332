"""What each management route does (spec §6.1), with MindSpore's messages (`scheduler_node.cc`); no HTTP here."""

from __future__ import annotations

import json
import logging
from typing import Any

from mindfed.cache.scheduler_ops import ClusterSnapshot, SchedulerCache, SetStateResult, make_instance_name
from mindfed.cache.store import DISABLED, FINISHED, RUNNING, Ttl
from mindfed.errors import MindFedError
from mindfed.scheduler.hyper_params import merge_overrides, parse_body

logger = logging.getLogger(__name__)

CACHE_UNAVAILABLE = "Failed to access the cache server. Please retry later."
CLUSTER_STATES = {RUNNING: "CLUSTER_READY", DISABLED: "CLUSTER_DISABLE", FINISHED: "CLUSTER_FINISH"}
DEFAULT_ITERATION_WINDOW_MS = 3_600_000  # only for the TTL when the hyper parameters lack the window
NEW_INSTANCE_ATTEMPTS = 3


class ManagementError(MindFedError):
    """A refused management request; the message is the `error_message` the caller sees."""


class ClusterService:
    """The management operations of one job. Stateless: each call reads Redis afresh.

    Args:
        cache: Redis operations bound to the job.
    """

    def __init__(self, cache: SchedulerCache) -> None:
        self._cache = cache

    def _not_found(self) -> str:
        return f"Cannot find cluster info for {self._cache.fl_name}"

    async def _snapshot(self) -> ClusterSnapshot:
        snap = await self._cache.snapshot()
        if snap is None:
            raise ManagementError(self._not_found())
        return snap

    @staticmethod
    def _nodes(snap: ClusterSnapshot) -> dict[str, Any]:
        """`nodes` as MindSpore writes it: servers sorted by id, then hybrid workers (no TCP address: they listen
        on nothing); the key is absent when none is alive."""
        if not snap.servers and not snap.workers:
            return {}
        servers = [{"node_id": node_id, "role": "SERVER", "tcp_address": address}
                   for node_id, address in sorted(snap.servers.items())]
        workers = [{"node_id": worker_id, "role": "WORKER", "tcp_address": ""} for worker_id in snap.workers]
        return {"nodes": servers + workers}

    async def state(self) -> dict[str, Any]:
        """/state: cluster state and live nodes."""
        snap = await self._snapshot()
        body: dict[str, Any] = {"code": "0", "message": "Get cluster state successful.", **self._nodes(snap)}
        if snap.running_state in CLUSTER_STATES:  # Stop (3) has no cluster_state, as in MindSpore
            body["cluster_state"] = CLUSTER_STATES[snap.running_state]
        return body

    async def enable(self) -> dict[str, Any]:
        """/enableFLS: Disable → Running."""
        await self._set_state(RUNNING, "enabled", "enable")
        return {"code": "0", "message": "start enabling FL-Server successful."}

    async def disable(self) -> dict[str, Any]:
        """/disableFLS: Running → Disable."""
        await self._set_state(DISABLED, "disabled", "disable")
        return {"code": "0", "message": "start disabling FL-Server successful."}

    async def _set_state(self, state: int, done: str, verb: str) -> None:
        instance = await self._cache.instance_name()
        if not instance:
            raise ManagementError(self._not_found())
        result = await self._cache.set_running_state(instance, state)
        if result == SetStateResult.FINISHED:
            raise ManagementError(f"The instance is completed and cannot be {done}.")
        if result == SetStateResult.ALREADY:
            raise ManagementError(f"The instance has already been {done}.")
        if result == SetStateResult.NO_STATUS:
            raise ManagementError(f"Failed to {verb} cluster because of some inner error. Please retry later.")
        logger.info("instance %s: runningState -> %d (%s)", instance, state, verb)

    async def new_instance(self, raw_body: bytes) -> dict[str, Any]:
        """/newInstance: merge the body's overrides into the current hyper parameters under a new instance."""
        try:
            overrides = parse_body(raw_body)
        except ValueError as exc:
            raise ManagementError(str(exc)) from None
        for _ in range(NEW_INSTANCE_ATTEMPTS):
            instance = await self._cache.instance_name()
            if not instance:
                raise ManagementError(f"New instance failed: {self._not_found()}")
            current = await self._current_params(instance)
            try:
                merged = merge_overrides(current, overrides)
            except ValueError as exc:
                raise ManagementError(f"New instance failed: {exc}") from None
            window_ms = merged.get("global_iteration_time_window") or DEFAULT_ITERATION_WINDOW_MS
            ttl = Ttl.from_window(int(window_ms))
            if await self._cache.switch_instance(instance, make_instance_name(), json.dumps(merged, sort_keys=True),
                                                 ttl.config_s):
                return {"code": "0", "message": "Start new instance successful."}
        raise ManagementError("Failed to new instance because of some inner error. Please retry later.")

    async def _current_params(self, instance: str) -> dict[str, Any]:
        text = await self._cache.hyper_params_text(instance)
        if text is None:
            raise ManagementError("New instance failed: Failed to get current hyper params config")
        try:
            current = json.loads(text)
        except ValueError:
            current = None
        if not isinstance(current, dict):
            raise ManagementError("New instance failed: Failed to parse current hyper params config")
        return current

    async def query_instance(self) -> dict[str, Any]:
        """/queryInstance: live nodes and the current hyper parameters."""
        snap = await self._snapshot()
        text = await self._cache.hyper_params_text(snap.instance)
        if text is None:
            raise ManagementError(self._not_found())
        try:
            result = json.loads(text)
        except ValueError:
            raise ManagementError("Failed to query instance because of some inner error. Please retry later.") from None
        return {"code": "0", "message": "Query Instance successful.", "result": result, **self._nodes(snap)}
