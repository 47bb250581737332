"""The scheduler's Prometheus metrics and health probes: `/metrics`, `/healthz`, `/readyz` beside the REST plane.

`/healthz` and `/readyz` are always open (kubelets and load balancers send no token); `/metrics` is open unless
`MINDFED_METRICS_PRIVATE=1` puts it behind the operator credential (operator_auth.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from mindfed.cache.store import CacheStore
from mindfed.runtime.probes import RedisProbe, healthz, metrics_response, new_registry, readiness_response

PREFIX = "mindfed_scheduler"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SchedulerMetrics:
    """One scheduler's registry; `store` is read at each probe (None until the scheduler has connected).

    Args:
        routes: the management paths counted by name; any other path counts as "other".
    """

    def __init__(self, routes: frozenset[str]) -> None:
        self.store: CacheStore | None = None
        self._routes = routes
        self.registry = registry = new_registry()
        self.requests = Counter(f"{PREFIX}_requests", "Management requests answered, by path and outcome (ok, "
                                "refused: code 1, unauthorized: 401)", ["path", "outcome"], registry=registry)
        self.latency = Histogram(f"{PREFIX}_request_latency_seconds", "Management request latency, by path",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=registry)
        self.redis = RedisProbe(registry, PREFIX)
        up = Gauge(f"{PREFIX}_redis_up", "1 when Redis answered this scrape's PING", registry=registry)
        up.set_function(lambda: float(bool(self.redis.up)))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count and time the management routes (the probes themselves are not counted)."""
        if request.path not in self._routes:
            return await handler(request)
        started = time.perf_counter()
        response = await handler(request)
        outcome = {200: "ok", 401: "unauthorized"}.get(response.status, "refused")
        self.requests.labels(request.path, outcome).inc()
        self.latency.labels(request.path).observe(time.perf_counter() - started)
        return response

    def add_routes(self, app: web.Application) -> None:
        async def metrics(_request: web.Request) -> web.Response:
            await self.redis.problem(self.store)
            return metrics_response(self.registry)

        async def readyz(_request: web.Request) -> web.Response:
            return readiness_response([await self.redis.problem(self.store)])

        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)

