"""A server's Prometheus metrics and its health probes, served on the device HTTP port beside the rounds.

The request counters are fed where the request is already counted for metrics.json and the data-rate files
(http_api.py's `serve`), so `/metrics` and metrics.json count the same requests; gauges (phase, Redis, updates
pending and folded) are read from `ServerState` at scrape time, nothing is mirrored.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mindfed.protocol.plain_text import classify_plain_text
from mindfed.runtime.probes import RedisProbe, healthz, metrics_response, new_registry, readiness_response
from mindfed.server.phase import IterationPhase
from mindfed.server.shared_body import SharedBody
from mindfed.server.state import ServerState, now_ms

PREFIX = "mindfed_server"
# A round's answer is sub-millisecond (getModel from memory) up to seconds (a large updateModel under load).
ROUND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ITERATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)


def outcome(accepted: bool, body: bytes | SharedBody) -> str:
    """The reason class of one answer: "accepted", a plain text's label ("safemode", "not_ready", "finished",
    "inner_error", "verify_failed", "empty_output"), or "refused" (a FlatBuffer refusal: retcode not 200)."""
    if accepted:
        return "accepted"
    return (classify_plain_text(body) if isinstance(body, bytes) else None) or "refused"


class ServerMetrics:
    """One server's registry and instruments.

    Args:
        state: the server's state, read at scrape time.
    """

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.registry = registry = new_registry()
        self.requests = Counter(f"{PREFIX}_requests", "Device requests answered, by round and outcome (accepted, or "
                                "the reason class of a refusal)", ["round", "outcome"], registry=registry)
        self.latency = Histogram(f"{PREFIX}_round_latency_seconds", "Time from a request's arrival (after the "
                                 "admission gate) to its answer, by round", ["round"], buckets=ROUND_BUCKETS,
                                 registry=registry)
        self.received = Counter(f"{PREFIX}_received_bytes", "Request body bytes, by round", ["round"],
                                registry=registry)
        self.sent = Counter(f"{PREFIX}_sent_bytes", "Response body bytes, by round", ["round"], registry=registry)
        self.bad_bodies = Counter(f"{PREFIX}_bad_bodies", "Requests whose body was refused or incomplete (HTTP 4xx)",
                                  ["round"], registry=registry)
        self.iterations = Counter(f"{PREFIX}_iterations", "Iterations this server switched away from, by result",
                                  ["result"], registry=registry)
        self.iteration_duration = Histogram(f"{PREFIX}_iteration_duration_seconds", "From an iteration's first "
                                            "startFLJob to its switch, by result", ["result"],
                                            buckets=ITERATION_BUCKETS, registry=registry)
        self.redis = RedisProbe(registry, PREFIX)
        registry.register(_StateCollector(self))
        # Each request's children, found once: `labels()` takes a lock and checks its arguments on every call (four
        # per request were 2 % of a LeNet round's server samples). Rounds and outcomes are fixed sets.
        self._per_round: dict[str, tuple[Histogram, Counter, Counter]] = {}
        self._per_outcome: dict[tuple[str, str], Counter] = {}

    def observe(self, round_name: str, accepted: bool, received: int, body: bytes | SharedBody,
                seconds: float) -> None:
        """One answered request (called beside `StatsBuffer.add` and `DataRateRecorder.record`)."""
        key = (round_name, outcome(accepted, body))
        counted = self._per_outcome.get(key)
        if counted is None:
            counted = self._per_outcome[key] = self.requests.labels(*key)
        counted.inc()
        per_round = self._per_round.get(round_name)
        if per_round is None:
            per_round = self._per_round[round_name] = (self.latency.labels(round_name),
                                                       self.received.labels(round_name), self.sent.labels(round_name))
        latency, received_bytes, sent_bytes = per_round
        latency.observe(seconds)
        received_bytes.inc(received)
        sent_bytes.inc(len(body))

    def iteration_ended(self, iteration: int, success: bool, reason: str) -> None:  # noqa: ARG002 - hook signature
        """An iteration's end (SummaryWriter.write's hook): its result and, if it started, its duration."""
        result = "success" if success else "fail"
        self.iterations.labels(result).inc()
        started = self.state.iteration_start_ms
        if started is not None:
            self.iteration_duration.labels(result).observe(max(0, now_ms() - started) / 1000)

    def readiness_problems(self) -> list[str]:
        """What keeps the server from serving rounds, Redis aside (see `readyz`)."""
        st = self.state
        problems = []
        if st.stopping:
            problems.append("the server is stopping")
        if st.phase.current is not IterationPhase.RUNNING:
            problems.append(f"phase {st.phase.current} (safemode)")
        try:
            st.models.latest  # noqa: B018 - raises while no model is loaded
        except (KeyError, ValueError):
            problems.append("no model loaded")
        return problems

    def add_routes(self, app: web.Application, path_of: dict[str, str]) -> None:
        """`/metrics`, `/healthz`, `/readyz` at `path_of[name]` (the rounds' prefix rule)."""
        async def metrics(_request: web.Request) -> web.Response:
            await self.redis.problem(self.state.store)  # mindfed_server_redis_up is this scrape's
            return metrics_response(self.registry)

        async def readyz(_request: web.Request) -> web.Response:
            redis = await self.redis.problem(self.state.store)
            return readiness_response([redis, *self.readiness_problems()])

        app.router.add_get(path_of["metrics"], metrics)
        app.router.add_get(path_of["healthz"], healthz)
        app.router.add_get(path_of["readyz"], readyz)


class _StateCollector(Collector):
    """Gauges read from the server's state at each scrape."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        st = self._metrics.state
        yield _gauge("iteration", "The server's current iteration", st.iteration)
        phase = GaugeMetricFamily(f"{PREFIX}_phase", "1 for the server's current iteration phase", labels=["phase"])
        for p in IterationPhase:
            phase.add_metric([str(p)], float(st.phase.current is p))
        yield phase
        yield _gauge("safemode", "1 while rounds are answered with the safemode text", float(st.safemode))
        yield _gauge("running_state", "The instance's runningState (0 running, 1 disabled, 2 finished)",
                     st.running_state)
        up = self._metrics.redis.up
        yield _gauge("redis_up", "1 when Redis answered this scrape's PING", float(st.cache_ok if up is None else up))
        yield _gauge("requests_in_flight", "Requests inside a round handler", st.in_flight)
        yield _gauge("updates_pending", "Accepted updates admitted to the accumulator and not yet folded",
                     st.accumulator.pending)
        yield _gauge("updates_in_sum", "Updates folded into this iteration's local sum", len(st.accumulator.tags))
        yield _gauge("replica_held_bytes", "Bytes of peers' update bodies this server holds (update_log replica)",
                     st.replicas.nbytes)
        folded = CounterMetricFamily(f"{PREFIX}_updates_folded", "Updates folded since the server started",
                                     value=st.accumulator.stats.updates_folded)
        yield folded


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)
