"""The scheduler's web dashboard over a real Redis and real servers: its files and their headers, the overview the page
polls (nodes, the iteration's live counts, the finished iterations' metrics from the bounded history the summary
writer appends to), and the same credential rule as /state. The page itself is driven in a browser by
tests/e2e/test_dashboard_browser.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from tests.integration.cluster import Scheduler, running_scheduler, running_server, ut_config, ut_model

from mindfed.cache.iteration_history import IterationHistory
from mindfed.cache.store import CacheStore
from mindfed.cache.workers import register_worker, unregister_worker
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.scheduler.dashboard_routes import OVERVIEW_PATH
from mindfed.scheduler.openapi import openapi_document
from mindfed.scheduler.operator_auth import STATE_PUBLIC_ENV, TOKEN_ENV
from mindfed.scheduler.overview import history_points

pytestmark = pytest.mark.integration
TOKEN = "dash-token-0123456789"


async def get(sched: Scheduler, path: str, **kw: Any) -> tuple[int, Any, bytes]:
    async with sched.session.get(sched.app.url + path, allow_redirects=False,
                                 timeout=aiohttp.ClientTimeout(total=10), **kw) as resp:
        return resp.status, resp.headers, await resp.read()


async def overview(sched: Scheduler, **kw: Any) -> dict[str, Any]:
    status, _headers, body = await get(sched, OVERVIEW_PATH, **kw)
    assert status == 200, body
    return dict(json.loads(body))


async def test_the_page_and_its_files_are_served_with_a_strict_policy(redis_address: str, fl_name: str) -> None:
    async with running_scheduler(ut_config(redis_address, fl_name)) as sched:
        for path in ("/", "/dashboard"):
            status, headers, _ = await get(sched, path)
            assert (status, headers["Location"]) == (302, "/dashboard/")
        for path, kind in (("/dashboard/", "text/html"), ("/dashboard/app.js", "text/javascript"),
                           ("/dashboard/style.css", "text/css")):
            status, headers, body = await get(sched, path)
            assert status == 200
            assert headers["Content-Type"].startswith(kind)
            assert "script-src 'self'" in headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert body
        _, _, page = await get(sched, "/dashboard/")
        assert b'src="app.js"' in page
        assert b"<script>" not in page  # no inline script: the policy forbids it
        for missing in ("/dashboard/index.htm", "/dashboard/..%2Fapp.py", "/dashboard/dashboard_routes.py"):
            assert (await get(sched, missing))[0] == 404


def check_schema(body: dict[str, Any]) -> None:
    """`body` is what /openapi.json says the overview is."""
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(openapi_document()["components"]["schemas"]["Overview"]).validate(body)


async def test_before_any_server_the_overview_shows_the_scheduler_alone(redis_address: str, fl_name: str) -> None:
    async with running_scheduler(ut_config(redis_address, fl_name)) as sched:
        body = await overview(sched)
    assert body["nodes"] == [{"node_id": "scheduler", "role": "SCHEDULER", "tcp_address": sched.app.address}]
    assert (body["fl_name"], body["instance"], body["cluster_state"], body["iteration"], body["history"]) == (
        fl_name, None, None, None, [])
    check_schema(body)


async def test_the_overview_follows_an_iteration_to_its_end(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # Prepare: a job whose iterations need 2 devices (update_model_ratio 0.5: 1 update closes updateModel)
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2, "round.update_model_ratio": 0.5})
    async with running_scheduler(cfg) as sched, running_server(cfg, model, tmp_path) as server:
        before = await overview(sched)
        # Execute: two devices join, one uploads (loss 0.5 on 3 samples, accuracy 0.75 on 4)
        for fl_id in ("d1", "d2"):
            reply = parse_response_fl_job(await server.start_fl_job(fl_id, data_size=3, eval_data_size=4))
            assert reply.retcode == 200
        joined = await overview(sched)
        upload = {n: np.asarray(model[n]) * 3 for n in model.aggregated_names}
        reply = parse_response_update_model(await server.update_model("d1", 1, upload, upload_loss=0.5,
                                                                        upload_accuracy=0.75))
        assert reply.retcode == 200
        await server.wait_iteration(2)
        after = await overview(sched)
    # Assert
    node_id = server.node.state.node_id  # type: ignore[union-attr]
    assert [n["role"] for n in before["nodes"]] == ["SCHEDULER", "SERVER"]
    assert before["nodes"][0]["tcp_address"] == sched.app.address
    assert before["nodes"][1]["node_id"] == node_id
    assert (before["instance"], before["cluster_state"], before["running_state"]) == (
        server.node.state.instance, "CLUSTER_READY", "running")  # type: ignore[union-attr]
    assert (before["iteration"]["number"], before["iteration"]["of"]) == (1, 5)
    assert before["history"] == []
    rounds = {r["name"]: r for r in joined["iteration"]["rounds"]}
    assert (rounds["startFLJob"]["count"], rounds["startFLJob"]["threshold"]) == (2, 2)
    assert (rounds["updateModel"]["count"], rounds["updateModel"]["threshold"]) == (0, 1)
    assert rounds["startFLJob"]["started_ms"] is not None
    assert after["iteration"]["number"] == 2
    assert after["iteration"]["last_success"] is True
    [point] = after["history"]
    assert (point["instance"], point["iteration"], point["result"]) == (after["instance"], 1, "success")
    assert point["loss"] == pytest.approx(0.5)
    assert point["accuracy"] == pytest.approx(0.75)
    assert (point["participants"], point["started"]) == (1, 2)
    assert point["duration_ms"] >= 0
    for body in (before, joined, after):
        check_schema(body)
    # the history is the metrics line the server wrote to its metrics_file
    [line] = [json.loads(t) for t in (tmp_path / "metrics.json").read_text().splitlines()]
    assert (line["metricsLoss"], line["currentIteration"]) == (point["loss"], point["iteration"])


async def test_the_overview_wants_the_credential_that_state_wants(redis_address: str, fl_name: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ut_config(redis_address, fl_name)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path):
        status, headers, body = await get(sched, OVERVIEW_PATH)
        assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="mindfed"')
        assert TOKEN.encode() not in body
        assert (await get(sched, OVERVIEW_PATH, headers={"Authorization": "Bearer wrong"}))[0] == 401
        assert (await overview(sched, headers={"Authorization": f"Bearer {TOKEN}"}))["iteration"]["number"] == 1
        assert (await get(sched, "/dashboard/"))[0] == 200  # the page holds no cluster data: it asks for the token
    monkeypatch.setenv(STATE_PUBLIC_ENV, "1")
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path):
        assert (await overview(sched))["cluster_state"] == "CLUSTER_READY"
        status, reply = await sched.call("/disableFLS")
        assert (status, reply["code"]) == (401, "1")  # the actions still want it


async def test_the_history_keeps_the_latest_lines_only(redis_address: str, fl_name: str) -> None:
    store = CacheStore.connect(redis_address, fl_name)
    try:
        history = IterationHistory(store, keep=3)
        for it in range(1, 6):
            await history.append(json.dumps({"currentIteration": it, "instanceName": "i_1"}), ttl_s=100)
        await store.redis.rpush(store.job.iteration_history, "not json", "[1]")
        lines = await IterationHistory(store, keep=5).latest(5)
        ttl = await store.redis.ttl(store.job.iteration_history)
    finally:
        await store.close()
    assert [line["currentIteration"] for line in lines] == [3, 4, 5]  # the two foreign lines are skipped
    assert 0 < ttl <= 100
    with pytest.raises(ValueError, match="at least 1"):
        IterationHistory(store, keep=0)


def test_history_points_keep_one_point_per_iteration_and_drop_bad_values() -> None:
    lines: list[dict[str, Any]] = [
        {"instanceName": "i_1", "currentIteration": 1, "iterationResult": "fail", "metricsLoss": 1.0},
        {"instanceName": "i_1", "currentIteration": 2, "metricsLoss": "NaN", "metricsAuc": True,
         "clientVisitedInfo": [], "iterationExecutionTime": -5},
        {"instanceName": "i_1", "currentIteration": 1, "iterationResult": "success", "metricsLoss": 0.5,
         "clientVisitedInfo": {"updateModelAcceptClientNum": 4}},
    ]
    points = history_points(lines)
    assert [(p["iteration"], p["result"], p["loss"]) for p in points] == [(2, None, None), (1, "success", 0.5)]
    assert (points[0]["accuracy"], points[0]["participants"], points[0]["duration_ms"]) == (None, None, None)
    assert points[1]["participants"] == 4


async def test_a_browser_request_on_behalf_of_another_site_is_refused(redis_address: str, fl_name: str,
                                                                      tmp_path: Path) -> None:
    # Prepare: an open REST plane (no token), where only the browser's own label can tell a forged request apart
    cfg = ut_config(redis_address, fl_name)
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path):
        # Execute
        forged = {site: await sched.session.post(sched.app.url + "/disableFLS", headers={"Sec-Fetch-Site": site})
                  for site in ("cross-site", "same-site")}
        forged_read = await sched.session.get(sched.app.url + OVERVIEW_PATH, headers={"Sec-Fetch-Site": "cross-site"})
        still_running = (await sched.ok("/state"))["cluster_state"]
        own_page = await sched.session.post(sched.app.url + "/disableFLS", headers={"Sec-Fetch-Site": "same-origin"})
        page_file = await sched.session.get(sched.app.url + "/dashboard/", headers={"Sec-Fetch-Site": "cross-site"})
        # Assert
        for resp in (*forged.values(), forged_read):
            assert resp.status == 403
            assert (await resp.json())["code"] == "1"
        assert "Cross-site requests" in (await forged["cross-site"].json())["error_message"]
        assert still_running == "CLUSTER_READY"
        assert own_page.status == 200
        assert (await sched.ok("/state"))["cluster_state"] == "CLUSTER_DISABLE"
        assert page_file.status == 200  # the page holds no data; it is its reads and actions that are guarded
        for resp in (*forged.values(), forged_read, own_page, page_file):
            resp.release()


async def test_the_overview_lists_live_workers_after_the_servers(redis_address: str, fl_name: str,
                                                                 tmp_path: Path) -> None:
    # Prepare: a server, and a worker registered the way mindfed.worker registers (heartbeat key with a TTL)
    cfg = ut_config(redis_address, fl_name)
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path) as server:
        st = server.node.state  # type: ignore[union-attr]
        worker_id = "worker_fl_2026-12-03-10:00:00.000::123456"
        await register_worker(st.store, st.instance, worker_id, 30, st.ttl)
        # Execute
        with_worker = await overview(sched)
        await unregister_worker(st.store, st.instance, worker_id)
        without = await overview(sched)
    # Assert: the same membership /state reports, and the schema allows it
    assert [(n["role"], n["node_id"]) for n in with_worker["nodes"]][1:] == [
        ("SERVER", st.node_id), ("WORKER", worker_id)]
    assert with_worker["nodes"][2]["tcp_address"] == ""
    assert [n["role"] for n in without["nodes"]] == ["SCHEDULER", "SERVER"]
    check_schema(with_worker)
