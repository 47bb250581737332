"""What the dashboard shows, read from Redis afresh at every call (the scheduler keeps nothing): the cluster's nodes,
the iteration under way with its live round counts, and the metrics of the latest finished iterations. No HTTP here
(dashboard_routes.py serves it).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from mindfed.cache import keys as K
from mindfed.cache.scheduler_ops import RoundProgress, SchedulerCache
from mindfed.cache.store import DISABLED, FINISHED, RUNNING, STOPPED, InstanceStatus
from mindfed.config.schema_round import update_model_threshold
from mindfed.scheduler.service import CLUSTER_STATES

HISTORY_POINTS = 200  # finished iterations the page plots
RUNNING_STATES = {RUNNING: "running", DISABLED: "disabled", FINISHED: "finished", STOPPED: "stopped"}


class DashboardOverview:
    """The one read behind the dashboard.

    Args:
        cache: Redis operations bound to the job.
        address: the scheduler's own `host:port`, read at each call (it is known once the listener is bound).
        history_points: how many finished iterations `overview()` returns at most.
    """

    def __init__(self, cache: SchedulerCache, address: Callable[[], str],
                 history_points: int = HISTORY_POINTS) -> None:
        self._cache, self._address, self._history_points = cache, address, history_points

    async def overview(self) -> dict[str, Any]:
        """The page's data; the keys are described in README's Dashboard section (and always present).

        Raises:
            CacheError: Redis cannot be reached.
        """
        body: dict[str, Any] = {
            "code": "0", "fl_name": self._cache.fl_name, "instance": None, "cluster_state": None,
            "running_state": None, "iteration": None, "now_ms": int(time.time() * 1000),
            "nodes": [{"node_id": "scheduler", "role": "SCHEDULER", "tcp_address": self._address()}],
            "history": history_points(await self._cache.history(self._history_points)),
        }
        instance = await self._cache.instance_name()
        status = await self._cache.status(instance) if instance else None
        if not instance or status is None:
            return body
        servers = await self._cache.alive_servers(instance)
        progress = await self._cache.round_progress(instance, status.iteration)
        params = _json_object(await self._cache.hyper_params_text(instance))
        body.update(instance=instance, cluster_state=CLUSTER_STATES.get(status.running_state),
                    running_state=RUNNING_STATES.get(status.running_state, str(status.running_state)),
                    iteration=_iteration(status, progress, params))
        body["nodes"] += [{"node_id": node_id, "role": "SERVER", "tcp_address": address,
                           "updates": progress.updates_by_server.get(node_id, 0),
                           "folded": progress.folded_by_server.get(node_id, 0)}
                          for node_id, address in sorted(servers.items())]
        body["nodes"] += [{"node_id": worker_id, "role": "WORKER", "tcp_address": ""}
                          for worker_id in await self._cache.alive_workers(instance)]
        return body


def _iteration(status: InstanceStatus, progress: RoundProgress, params: Mapping[str, Any]) -> dict[str, Any]:
    """The iteration under way: its number out of fl_iteration_num, the gates' counts against their thresholds,
    every round's responses so far, and how the previous iteration ended."""
    start_threshold = _count(params.get("start_fl_job_threshold"))
    ratio = _number(params.get("update_model_ratio"))
    update_threshold = (update_model_threshold(start_threshold, ratio)
                        if start_threshold is not None and ratio is not None and 0 < ratio <= 1 else None)
    gates = [(K.ROUND_START_FL_JOB, start_threshold), (K.ROUND_UPDATE_MODEL, update_threshold)]
    return {
        "number": status.iteration,
        "of": _count(params.get("fl_iteration_num")),
        "last_success": status.last_success,
        "last_result": status.last_result,
        "rounds": [{"name": name, "count": progress.counts.get(name, 0), "threshold": threshold,
                    "started_ms": progress.timers.get(name)} for name, threshold in gates],
        "aggregated": sum(progress.folded_by_server.values()),
        "visits": [{"name": name, "total": total, "accepted": accepted}
                   for name, (total, accepted) in progress.visits.items()],
    }


def history_points(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per finished iteration from its metrics line (spec §9 keys), oldest first; a line written twice for
    one iteration (a summary writer taken over after it wrote) counts once, as its last copy."""
    points: dict[tuple[object, object], dict[str, Any]] = {}
    for line in lines:
        visits = line.get("clientVisitedInfo")
        visits = visits if isinstance(visits, dict) else {}
        point = {
            "instance": _text(line.get("instanceName")),
            "iteration": _count(line.get("currentIteration")),
            "result": _text(line.get("iterationResult")),
            "loss": _number(line.get("metricsLoss")),
            "accuracy": _number(line.get("metricsAuc")),
            "participants": _count(visits.get("updateModelAcceptClientNum")),
            "started": _count(visits.get("startFLJobAcceptClientNum")),
            "duration_ms": _count(line.get("iterationExecutionTime")),
            "end_time": _text(line.get("endTime")),
            "reason": _text(line.get("iterationReason")),
        }
        key = (point["instance"], point["iteration"])
        points.pop(key, None)  # the later copy goes to the end, where it was written
        points[key] = point
    return list(points.values())


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
