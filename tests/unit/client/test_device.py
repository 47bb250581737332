"""DeviceClient against a small in-test aiohttp peer that answers scripted FlatBuffers.

The peer is a real HTTP server on 127.0.0.1:0 built with our response builders; it
parses every request with our request parsers, so the client's bytes are checked too.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web

from mindfed.client.device import DeviceClient, PlainText
from mindfed.errors import NetworkError
from mindfed.protocol.messages import (
    TEXT_JOB_NOT_AVAILABLE,
    TEXT_SAFEMODE,
    FLPlanParams,
    ResponseCode,
    build_response_fl_job,
    build_response_get_model,
    build_response_get_result,
    build_response_update_model,
    parse_request_fl_job,
    parse_request_get_model,
    parse_request_get_result,
    parse_request_update_model,
)

PLAN = FLPlanParams(server_mode="FEDERATED_LEARNING", fl_name="job", iterations=3, epochs=2, mini_batch=16, lr=0.05)
PARSERS: dict[str, Callable[[bytes], object]] = {
    "startFLJob": parse_request_fl_job,
    "updateModel": parse_request_update_model,
    "getResult": parse_request_get_result,
    "getModel": parse_request_get_model,
}


@dataclass
class Peer:
    """Scripted answers per round; records every parsed request with its arrival time."""

    url: str = ""
    script: dict[str, list[bytes]] = field(default_factory=dict)
    seen: list[tuple[str, object, float]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        round_name = request.match_info["round"]
        self.seen.append((round_name, PARSERS[round_name](await request.read()), time.monotonic()))
        answers = self.script[round_name]
        return web.Response(body=answers.pop(0) if len(answers) > 1 else answers[0])


async def _start_peer(prefix: str = "") -> tuple[Peer, web.AppRunner]:
    peer = Peer()
    app = web.Application()
    app.add_routes([web.post(prefix + "/{round}", peer.handle)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    peer.url = f"http://{host}:{port}"
    return peer, runner


@pytest_asyncio.fixture
async def peer() -> AsyncIterator[Peer]:
    peer, runner = await _start_peer()
    try:
        yield peer
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _success(iteration: int = 1) -> bytes:
    return build_response_fl_job(
        200, "success", iteration, True, "1", PLAN, [("w", np.array([1.0, 2.0], np.float32))]
    )


def _out_of_time(next_req_ms: int) -> bytes:
    return build_response_fl_job(ResponseCode.OutOfTime, "later", 1, False, str(next_req_ms))


def _client(peer: Peer, session: aiohttp.ClientSession, poll_s: float = 0.02) -> DeviceClient:
    return DeviceClient(peer.url, "job", "dev-7", session, poll_interval_s=poll_s)


@pytest.mark.asyncio
async def test_start_fl_job_sends_a_valid_request_and_exposes_the_plan(peer: Peer, session: aiohttp.ClientSession):
    # Prepare
    peer.script["startFLJob"] = [_success(4)]
    client = _client(peer, session)

    # Execute
    result = await client.start_fl_job(iteration=3, data_size=64, eval_data_size=8)

    # Assert
    assert not isinstance(result, PlainText)
    assert (result.retcode, result.iteration, result.feature_map[0].data.tolist()) == (200, 4, [1.0, 2.0])
    assert client.plan is not None
    assert (client.plan.epochs, client.plan.mini_batch) == (2, 16)
    (_, req, _), = peer.seen
    assert (req.fl_name, req.fl_id, req.iteration, req.data_size, req.eval_data_size) == ("job", "dev-7", 3, 64, 8)
    assert req.timestamp.isdigit()
    assert abs(int(req.timestamp) - time.time() * 1000) < 60_000
    assert req.download_compress_types == (0, 2)


@pytest.mark.asyncio
async def test_join_retries_safemode_then_sleeps_until_next_req_time(peer: Peer, session: aiohttp.ClientSession):
    # Prepare
    next_ms = int(time.time() * 1000) + 300
    peer.script["startFLJob"] = [TEXT_SAFEMODE.encode(), _out_of_time(next_ms), _success()]

    # Execute
    result = await _client(peer, session).join(iteration=0, data_size=10, deadline_s=5)

    # Assert
    assert not isinstance(result, PlainText)
    assert result.retcode == 200
    assert len(peer.seen) == 3
    assert peer.seen[2][2] * 1000 >= peer.seen[1][2] * 1000 + 200  # waited for next_req_time


@pytest.mark.asyncio
async def test_join_with_stale_next_req_time_waits_one_poll_not_negative(peer: Peer, session: aiohttp.ClientSession):
    peer.script["startFLJob"] = [_out_of_time(int(time.time() * 1000) - 60_000), _success()]
    result = await _client(peer, session, poll_s=0.05).join(0, 10, deadline_s=5)
    assert not isinstance(result, PlainText)
    assert result.retcode == 200
    assert peer.seen[1][2] - peer.seen[0][2] >= 0.04


@pytest.mark.asyncio
async def test_join_stops_at_the_deadline_even_if_next_req_time_is_far(peer: Peer, session: aiohttp.ClientSession):
    peer.script["startFLJob"] = [_out_of_time(int(time.time() * 1000) + 3_600_000)]
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await _client(peer, session).join(0, 10, deadline_s=0.3)
    assert time.monotonic() - start < 2


@pytest.mark.asyncio
async def test_join_returns_finished_marker_when_job_is_over(peer: Peer, session: aiohttp.ClientSession):
    peer.script["startFLJob"] = [TEXT_JOB_NOT_AVAILABLE.encode()]
    result = await _client(peer, session).join(0, 10, deadline_s=5)
    assert isinstance(result, PlainText)
    assert result.finished
    assert len(peer.seen) == 1


@pytest.mark.asyncio
async def test_join_returns_request_error_without_retrying(peer: Peer, session: aiohttp.ClientSession):
    peer.script["startFLJob"] = [build_response_fl_job(ResponseCode.RequestError, "bad", 1)]
    result = await _client(peer, session).join(0, 10, deadline_s=5)
    assert not isinstance(result, PlainText)
    assert result.retcode == 400
    assert len(peer.seen) == 1


@pytest.mark.asyncio
async def test_wait_result_polls_through_not_ready_and_safemode(peer: Peer, session: aiohttp.ClientSession):
    peer.script["getResult"] = [
        build_response_get_result(ResponseCode.SucNotReady, "not ready", 2, "1"),
        TEXT_SAFEMODE.encode(),
        build_response_get_result(ResponseCode.SUCCEED, "Get result for iteration 2", 3, "1"),
    ]
    result = await _client(peer, session).wait_result(iteration=2, deadline_s=5)
    assert not isinstance(result, PlainText)
    assert (result.retcode, result.iteration) == (200, 3)
    assert [req.iteration for _, req, _ in peer.seen] == [2, 2, 2]


@pytest.mark.asyncio
async def test_wait_result_stops_at_the_deadline(peer: Peer, session: aiohttp.ClientSession):
    peer.script["getResult"] = [build_response_get_result(ResponseCode.SucNotReady, "not ready", 2, "1")]
    with pytest.raises(TimeoutError):
        await _client(peer, session).wait_result(2, deadline_s=0.2)
    assert len(peer.seen) >= 3


@pytest.mark.asyncio
async def test_update_model_uploads_float32_weights(peer: Peer, session: aiohttp.ClientSession):
    # Prepare
    peer.script["updateModel"] = [build_response_update_model(200, "success not ready", "123")]
    weights = {"conv.w": np.arange(6, dtype=np.float64).reshape(2, 3), "fc.b": np.ones(2, np.float32)}

    # Execute
    result = await _client(peer, session).update_model(5, weights, loss=0.5, accuracy=0.75)

    # Assert
    assert not isinstance(result, PlainText)
    assert (result.reason, result.next_req_time) == ("success not ready", "123")
    (_, req, _), = peer.seen
    assert (req.fl_id, req.iteration, req.upload_loss, req.upload_accuracy) == ("dev-7", 5, 0.5, 0.75)
    assert [(t.name, t.data.tolist()) for t in req.feature_map] == [
        ("conv.w", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]), ("fc.b", [1.0, 1.0]),
    ]  # fmt: skip


@pytest.mark.asyncio
async def test_get_model_returns_weights(peer: Peer, session: aiohttp.ClientSession):
    peer.script["getModel"] = [build_response_get_model(200, "ok", 3, [("w", np.full(3, 0.5, np.float32))], "9")]
    result = await _client(peer, session).get_model(2)
    assert not isinstance(result, PlainText)
    assert result.feature_map[0].data.tolist() == [0.5, 0.5, 0.5]
    assert peer.seen[0][1].iteration == 2


@pytest.mark.asyncio
async def test_requests_spread_over_several_servers(session: aiohttp.ClientSession):
    # Prepare
    (a, runner_a), (b, runner_b) = await _start_peer("/fl"), await _start_peer("/fl")
    for p in (a, b):
        p.script["getResult"] = [build_response_get_result(200, "ok", 1, "1")]
    client = DeviceClient([a.url, b.url], "job", "dev", session, url_prefix="/fl", rng=random.Random(3))
    try:
        # Execute
        for _ in range(20):
            await client.get_result(1)
    finally:
        await runner_a.cleanup()
        await runner_b.cleanup()

    # Assert
    assert len(a.seen) + len(b.seen) == 20
    assert a.seen
    assert b.seen


@pytest.mark.asyncio
async def test_http_error_and_unreachable_server_raise_network_error(peer: Peer, session: aiohttp.ClientSession):
    with pytest.raises(NetworkError, match="HTTP 404"):
        await DeviceClient(peer.url, "job", "dev", session, url_prefix="/nope/deeper").get_result(1)
    _, runner = await _start_peer()
    url = f"http://{runner.addresses[0][0]}:{runner.addresses[0][1]}"
    await runner.cleanup()
    with pytest.raises(NetworkError):
        await DeviceClient(url, "job", "dev", session).get_result(1)


@pytest.mark.asyncio
async def test_owned_session_is_closed_by_context_manager(peer: Peer):
    peer.script["getResult"] = [build_response_get_result(200, "ok", 1, "1")]
    async with DeviceClient(peer.url, "job", "dev") as client:
        result = await client.get_result(1)
    assert not isinstance(result, PlainText)
    assert result.retcode == 200
