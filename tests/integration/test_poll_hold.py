"""Long polling of getModel/getResult (`client.poll_hold_ms`, server/iteration_watch.py) on a real server and Redis: a
device asking before the iteration ends is answered the moment it ends, with the model, instead of SucNotReady; with
nothing happening it gets MindSpore's SucNotReady after the hold; a stopping server answers held requests at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config, ut_model

from mindfed.protocol import responses as rs

pytestmark = pytest.mark.integration


async def test_a_held_get_model_is_answered_with_the_model_when_the_iteration_ends(redis_address: str,
                                                                                   fl_name: str,
                                                                                   tmp_path: Path) -> None:
    # Prepare: an iteration that one update closes; a device asks for its model before anyone uploaded
    model = ut_model()
    cfg = ut_config(redis_address, fl_name, **{"client.poll_hold_ms": 20000})
    async with running_server(cfg, model, tmp_path) as server:
        assert rs.parse_response_fl_job(await server.start_fl_job("d1", data_size=2)).retcode == 200
        started = time.monotonic()
        held = asyncio.ensure_future(server.get_model(1))
        await asyncio.sleep(0.5)
        assert not held.done()  # MindSpore would have said SucNotReady by now
        # Execute: the update that ends the iteration
        upload = {n: np.asarray(model[n]) * 2 + 1 for n in model.aggregated_names}
        assert rs.parse_response_update_model(await server.update_model("d1", 1, upload)).retcode == 200
        reply = rs.parse_response_get_model(await asyncio.wait_for(held, 10))
        waited = time.monotonic() - started
    # Assert: the model of iteration 1, well before the hold ran out
    assert reply.retcode == 200
    served = {t.name: t.data for t in reply.feature_map}
    for name in model.aggregated_names:
        np.testing.assert_allclose(served[name], (np.asarray(model[name]) + 0.5).reshape(-1), rtol=1e-6)
    assert waited < 10


async def test_with_nothing_happening_the_hold_ends_in_sucnotready(redis_address: str, fl_name: str,
                                                                  tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"client.poll_hold_ms": 700})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        started = time.monotonic()
        model_reply = rs.parse_response_get_model(await server.get_model(1))
        result_reply = rs.parse_response_get_result(await server.get_result(1))
        waited = time.monotonic() - started
    assert (model_reply.retcode, result_reply.retcode) == (201, 201)
    assert model_reply.reason.startswith("The model is not ready yet for iteration 1.")
    assert 1.3 <= waited < 5  # two holds of 0.7 s


async def test_a_stopping_server_answers_held_requests_at_once(redis_address: str, fl_name: str,
                                                               tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"client.poll_hold_ms": 30000})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        held = asyncio.ensure_future(server.get_result(1))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        stopping = asyncio.ensure_future(server.node.stop())
        reply = rs.parse_response_get_result(await asyncio.wait_for(held, 10))
        await stopping
        waited = time.monotonic() - started
    assert reply.retcode == 201
    assert waited < 5
