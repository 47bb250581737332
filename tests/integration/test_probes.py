"""A server's `/metrics`, `/healthz` and `/readyz` (beside the rounds): the counters match metrics.json, readiness
follows Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.cluster import Server, running_server, ut_config, ut_model

from mindfed.cache.embedded import EmbeddedRedis
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.summary.metrics_file import read_all

pytestmark = pytest.mark.integration


async def scrape(server: Server, path: str = "metrics") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`, parsed by prometheus-client's own parser: (name, sorted labels) -> value."""
    async with server.session.get(server.url + path) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def probe(server: Server, path: str) -> tuple[int, dict[str, Any]]:
    async with server.session.get(server.url + path) as resp:
        return resp.status, await resp.json()


def requests(samples: dict[Any, float], round_name: str, outcome: str | None = None) -> float:
    return sum(v for (name, labels), v in samples.items() if name == "mindfed_server_requests_total"
               and dict(labels)["round"] == round_name and (outcome is None or dict(labels)["outcome"] == outcome))


def total(samples: dict[Any, float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def test_metrics_match_metrics_json_over_three_iterations(redis_address: str, fl_name: str,
                                                                tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, fl_iteration_num=3, **{"round.start_fl_job_threshold": 2})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        assert (await probe(server, "healthz")) == (200, {"status": "alive"})
        assert (await probe(server, "readyz")) == (200, {"status": "ready"})
        for iteration in (1, 2, 3):
            for device in ("a", "b"):
                assert parse_response_fl_job(await server.start_fl_job(device)).retcode == 200
            # a stale update is refused (counted as a reject in both)
            assert parse_response_update_model(await server.update_model("a", iteration + 5, {"feature_bn": [0.0]})
                                               ).retcode != 200
            for device in ("a", "b"):
                answer = await server.update_model(device, iteration, {"feature_bn": [float(iteration)]})
                assert parse_response_update_model(answer).retcode == 200
            await server.wait_model(iteration)
        deadline = time.monotonic() + 10
        while len(read_all(tmp_path / "metrics.json")) < 3:
            assert time.monotonic() < deadline, "metrics.json has fewer than 3 lines"
            await asyncio.sleep(0.05)
        samples = await scrape(server)
    lines = read_all(tmp_path / "metrics.json")
    assert [line["iterationResult"] for line in lines] == ["success"] * 3
    for round_name in ("startFLJob", "updateModel"):
        visited = [line["clientVisitedInfo"] for line in lines]
        assert requests(samples, round_name) == sum(v[f"{round_name}TotalClientNum"] for v in visited)
        assert requests(samples, round_name, "accepted") == sum(v[f"{round_name}AcceptClientNum"] for v in visited)
        assert requests(samples, round_name) - requests(samples, round_name, "accepted") == \
            sum(v[f"{round_name}RejectClientNum"] for v in visited)
    assert requests(samples, "updateModel", "refused") == 3
    assert samples[("mindfed_server_iterations_total", (("result", "success"),))] == 3
    assert samples[("mindfed_server_iteration_duration_seconds_count", (("result", "success"),))] == 3
    assert samples[("mindfed_server_round_latency_seconds_count", (("round", "updateModel"),))] == 9
    # bytes: metrics.json counts the rounds of its iterations; /metrics every request (getModel polls after the last)
    received = sum(line["bytesReceived"] for line in lines)
    sent = sum(line["bytesSent"] for line in lines)
    fl_rounds = sum(samples[("mindfed_server_received_bytes_total", (("round", r),))]
                    for r in ("startFLJob", "updateModel"))
    assert 0 < fl_rounds <= received <= total(samples, "mindfed_server_received_bytes_total")
    assert 0 < sent <= total(samples, "mindfed_server_sent_bytes_total")
    assert samples[("mindfed_server_updates_folded_total", ())] == 6
    assert samples[("mindfed_server_redis_up", ())] == 1
    assert samples[("mindfed_server_phase", (("phase", "running"),))] == 1
    assert samples[("process_resident_memory_bytes", ())] > 0


async def test_readyz_follows_redis(fl_name: str, tmp_path: Path) -> None:
    redis = EmbeddedRedis().start()
    try:
        cfg = ut_config(redis.address, fl_name)
        async with running_server(cfg, ut_model(), tmp_path) as server:
            assert (await probe(server, "readyz"))[0] == 200
            redis.stop()
            status, body = await probe(server, "readyz")
            assert status == 503
            assert body["status"] == "unready"
            assert "distributed cache unreachable" in body["reason"]
            assert (await probe(server, "healthz"))[0] == 200  # alive all the same
            assert (await scrape(server))[("mindfed_server_redis_up", ())] == 0
            redis = EmbeddedRedis(port=redis.port).start()
            deadline = time.monotonic() + 15
            while (answer := await probe(server, "readyz"))[0] != 200:
                assert time.monotonic() < deadline, answer
                await asyncio.sleep(0.1)
            assert (await scrape(server))[("mindfed_server_redis_up", ())] == 1
    finally:
        redis.stop()


async def test_probes_follow_the_url_prefix(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"client.http_url_prefix": "/fl/"})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        assert (await probe(server, "fl/healthz"))[0] == 200
        assert (await probe(server, "fl/readyz"))[0] == 200
        assert ("mindfed_server_iteration", ()) in await scrape(server, "fl/metrics")
