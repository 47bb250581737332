"""The operator CLI (`mindfed state | enable | disable | new-instance | query-instance`) against a running scheduler
and server, with and without an operator token; and the scheduler's own `/metrics`, `/healthz`, `/readyz`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.cluster import Scheduler, running_scheduler, running_server, ut_config, ut_model

from mindfed.cli.main import main
from mindfed.scheduler.operator_auth import METRICS_PRIVATE_ENV, TOKEN_ENV, TOKEN_FILE_ENV

pytestmark = pytest.mark.integration
TOKEN = "s3cret-operator-token"


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`mindfed ...` in this process (in a thread: the scheduler answers on this loop)."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def wait_state(sched: Scheduler, wanted: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (await sched.call("/state"))[1].get("cluster_state") != wanted:
        assert time.monotonic() < deadline, f"cluster never reached {wanted}"
        await asyncio.sleep(0.05)


@pytest.fixture(autouse=True)
def _no_operator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (TOKEN_ENV, TOKEN_FILE_ENV, METRICS_PRIVATE_ENV):
        monkeypatch.delenv(name, raising=False)


async def test_cli_drives_disable_enable_and_new_instance(redis_address: str, fl_name: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path) as server:
        url = ["--scheduler", sched.app.url]
        code, out, _ = await cli(capsys, "state", *url)
        assert code == 0
        assert "cluster state: CLUSTER_READY" in out
        assert "servers: 1" in out
        assert server.node.state.tcp_address in out

        code, out, _ = await cli(capsys, "disable", *url)
        assert (code, out.strip()) == (0, "start disabling FL-Server successful.")
        code, _, err = await cli(capsys, "disable", *url)  # MindSpore's message, exit 1
        assert (code, err.strip()) == (1, "error: The instance has already been disabled.")
        code, out, _ = await cli(capsys, "state", "--json", *url)
        assert json.loads(out)["cluster_state"] == "CLUSTER_DISABLE"

        code, out, _ = await cli(capsys, "enable", *url)
        assert (code, out.strip()) == (0, "start enabling FL-Server successful.")
        await wait_state(sched, "CLUSTER_READY")

        instance = server.node.state.instance
        code, out, _ = await cli(capsys, "new-instance", "start_fl_job_threshold=3", *url)
        assert (code, out.strip()) == (0, "Start new instance successful.")
        deadline = time.monotonic() + 10
        while server.node.state.instance == instance or server.node.state.safemode:
            assert time.monotonic() < deadline, "the server did not switch to the new instance"
            await asyncio.sleep(0.05)
        code, out, _ = await cli(capsys, "query-instance", "--json", *url)
        assert code == 0
        assert json.loads(out)["result"]["start_fl_job_threshold"] == 3
        code, out, _ = await cli(capsys, "query-instance", *url)
        assert "start_fl_job_threshold = 3" in out

        code, _, err = await cli(capsys, "new-instance", "start_fl_job_threshold=-1", *url)
        assert (code, err.strip()) == (1, "error: New instance failed: Field start_fl_job_threshold in hyper param "
                                          "config should be unsigned integer number")

        samples = await scheduler_metrics(sched)
        assert samples[("mindfed_scheduler_requests_total", (("outcome", "ok"), ("path", "/disableFLS")))] == 1
        assert samples[("mindfed_scheduler_requests_total", (("outcome", "refused"), ("path", "/disableFLS")))] == 1
        assert samples[("mindfed_scheduler_redis_up", ())] == 1


async def test_cli_with_an_operator_token(redis_address: str, fl_name: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    cfg = ut_config(redis_address, fl_name)
    async with running_scheduler(cfg) as sched, running_server(cfg, ut_model(), tmp_path):
        url = ["--scheduler", sched.app.url]
        monkeypatch.delenv(TOKEN_ENV)
        code, _, err = await cli(capsys, "disable", *url)
        assert code == 1
        assert "Operator authentication required" in err
        # the probes and /metrics stay open without the token
        for path in ("/healthz", "/readyz", "/metrics"):
            async with sched.session.get(sched.app.url + path) as resp:
                assert resp.status == 200, path
                assert TOKEN not in await resp.text()

        token_file = tmp_path / "token"
        token_file.write_text(TOKEN + "\n")
        monkeypatch.setenv(TOKEN_FILE_ENV, str(token_file))
        code, out, _ = await cli(capsys, "disable", *url)  # the refused call above changed nothing
        assert (code, out.strip()) == (0, "start disabling FL-Server successful.")
        monkeypatch.delenv(TOKEN_FILE_ENV)
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        code, out, _ = await cli(capsys, "enable", "--json", *url)
        assert code == 0
        assert json.loads(out)["code"] == "0"


async def test_metrics_can_be_put_behind_the_token(redis_address: str, fl_name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(METRICS_PRIVATE_ENV, "1")
    async with running_scheduler(ut_config(redis_address, fl_name)) as sched:
        async with sched.session.get(sched.app.url + "/metrics") as resp:
            assert resp.status == 401
        async with sched.session.get(sched.app.url + "/metrics",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.status == 200
        async with sched.session.get(sched.app.url + "/readyz") as resp:
            assert (resp.status, await resp.json()) == (200, {"status": "ready"})


async def test_unreachable_scheduler_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    from mindfed.cache.embedded import free_port  # noqa: PLC0415

    code, _, err = await cli(capsys, "state", "--scheduler", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert code == 3
    assert "cannot reach the scheduler" in err


async def scheduler_metrics(sched: Scheduler) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    async with sched.session.get(sched.app.url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
