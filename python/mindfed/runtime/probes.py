"""What every process serves for its operators beside its own routes: Prometheus `/metrics` and the `/healthz`
(alive) and `/readyz` (serving) probes. Each app owns its `CollectorRegistry`: a test runs several servers and a
scheduler in one process, and the global registry would mix them up.

Nothing here reads a secret: the metrics carry counts, sizes, phases and round names, never tokens, passwords, node
certificates or Redis URLs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, ProcessCollector, generate_latest

from mindfed.cache.store import CacheStore
from mindfed.errors import CacheError

METRICS, HEALTHZ, READYZ = "metrics", "healthz", "readyz"
PROBE_PATHS = (METRICS, HEALTHZ, READYZ)
REDIS_PROBE_TIMEOUT_S = 1.0
# Redis round trips on loopback are ~0.1 ms, across hosts a few ms; a probe stuck past 1 s counts as Redis away.
REDIS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def new_registry() -> CollectorRegistry:
    """A registry of its own, with the process collector (`process_resident_memory_bytes`, CPU, open fds)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


def metrics_response(registry: CollectorRegistry) -> web.Response:
    """The Prometheus text exposition of `registry`."""
    response = web.Response(body=generate_latest(registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def healthz(_request: web.Request) -> web.Response:
    """Alive: the event loop answers."""
    return web.json_response({"status": "alive"})


def readiness_response(reasons: Iterable[str]) -> web.Response:
    """200 `{"status":"ready"}`, or 503 `{"status":"unready","reason":...}` naming every unmet condition."""
    unmet = [r for r in reasons if r]
    if not unmet:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "unready", "reason": "; ".join(unmet)}, status=503)


class RedisProbe:
    """PING Redis for a probe, bounded, and time it (`mindfed_redis_probe_seconds`, `mindfed_redis_up`).

    Args:
        registry: where the latency histogram goes.
        prefix: the metric family prefix of the process ("mindfed_server", "mindfed_scheduler").
    """

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.latency = Histogram(f"{prefix}_redis_probe_seconds", "Redis PING latency of the readiness probes and "
                                 "metrics scrapes", buckets=REDIS_BUCKETS, registry=registry)
        self.up: bool | None = None  # None: not probed yet

    async def problem(self, store: CacheStore | None) -> str:
        """"" when Redis answers within REDIS_PROBE_TIMEOUT_S, else why not (no address, no secret)."""
        if store is None:
            return "no distributed cache connection"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REDIS_PROBE_TIMEOUT_S):
                problem = await store.probe()
        except TimeoutError:
            problem = f"Redis did not answer within {REDIS_PROBE_TIMEOUT_S} s"
        except CacheError as exc:
            problem = str(exc)
        self.latency.observe(time.perf_counter() - started)
        self.up = not problem
        return "distributed cache unreachable: " + problem if problem else ""
