"""Whole iterations: 5 rounds of one device, the finish texts, and reads after the finish (spec §14)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config, ut_model

from mindfed.cache.durability import DurableUpdates, read_model
from mindfed.model.weights import ModelWeights
from mindfed.protocol.responses import parse_response_fl_job, parse_response_get_result, parse_response_update_model
from mindfed.server.partials import decode_model, encode_model
from mindfed.summary.metrics_file import read_all

pytestmark = pytest.mark.integration

FINISHED = b"The server's training job is disabled or finished."


async def test_one_client_five_iterations_then_finish(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    model = ut_model()
    cfg = ut_config(redis_address, fl_name)
    async with running_server(cfg, model, tmp_path) as server:
        expected = {n: model[n].reshape(-1) for n in model.names}
        for it in range(1, 6):
            job = parse_response_fl_job(await server.start_fl_job("1001", data_size=2, iteration=it - 1))
            assert (job.retcode, job.iteration, job.is_selected) == (200, it, True)
            got = {t.name: np.asarray(t.data) for t in job.feature_map}
            for name, value in expected.items():  # previous aggregate, and the initial non-aggregated weight
                np.testing.assert_allclose(got[name], value, rtol=1e-6)
            upload = {n: np.full(model[n].shape, float(it), np.float32) * 2 for n in model.aggregated_names}
            assert parse_response_update_model(await server.update_model("1001", it, upload)).retcode == 200
            served = await server.wait_model(it)
            assert sorted(t.name for t in served.feature_map) == sorted(model.aggregated_names)
            for t in served.feature_map:
                np.testing.assert_allclose(np.asarray(t.data), float(it))
                expected[t.name] = np.full(model.sizes[t.name], float(it), np.float32)
            result = parse_response_get_result(await server.get_result(it))
            assert (result.retcode, result.reason) == (200, f"Get result for iteration {it}")
            if it < 5:
                await server.wait_iteration(it + 1)
                late = parse_response_update_model(await server.update_model("1001", it, upload))
                assert late.reason == "devices_meta for 1001 is not set. Please retry later."
        await server.wait_iteration(6)
        assert await server.start_fl_job("1001") == FINISHED
        assert await server.update_model("1001", 5, {"feature_bn": [1.0]}) == FINISHED
        assert (await server.wait_model(5)).retcode == 200  # reads still work after the finish
        assert parse_response_get_result(await server.get_result(5)).retcode == 200
    lines = read_all(tmp_path / "metrics.json")
    assert [line["currentIteration"] for line in lines] == [1, 2, 3, 4, 5]
    assert all(line["iterationResult"] == "success" for line in lines)
    assert lines[-1]["instanceStatus"] == "finish"


async def test_round_timeout_fails_the_iteration(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2,
                                               "round.start_fl_job_time_window": 300})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        await server.start_fl_job("lonely")
        await server.wait_iteration(2, timeout_s=5)
    line = read_all(tmp_path / "metrics.json")[-1]
    assert (line["currentIteration"], line["iterationResult"]) == (1, "fail")
    assert line["iterationReason"].startswith("Round startFLJob timeout!")


async def test_a_dead_summary_writer_is_replaced(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # A server that took the summary lock and died (nobody renews its lease) must not cost the iteration its line.
    cfg = ut_config(redis_address, fl_name)
    async with running_server(cfg, ut_model(), tmp_path) as server:
        keys = server.node.state.store.job.instance(server.node.state.instance).iteration(1)
        await server.node.state.store.redis.set(keys.summary_lock, "ghost-node", ex=2)  # its lease, running out
        await server.start_fl_job("1001")
        await server.update_model("1001", 1, {"feature_bn": [1.0]})
        await server.wait_iteration(2)
        deadline = asyncio.get_running_loop().time() + 10
        while not (tmp_path / "metrics.json").exists() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
    lines = read_all(tmp_path / "metrics.json")
    assert [line["currentIteration"] for line in lines] == [1]


async def test_a_failure_that_wins_over_a_finished_combine_discards_its_aggregate(redis_address: str, fl_name: str,
                                                                                  tmp_path: Path) -> None:
    # The aggregator stored and published its combine, then a failure (a stop, a timeout) won the compare-and-set:
    # it must serve and publish the previous model, like every other server, not the aggregate nobody adopted.
    model = ut_model()
    async with running_server(ut_config(redis_address, fl_name), model, tmp_path) as server:
        state, driver = server.node.state, server.node._driver  # noqa: SLF001 - staging the lost race
        assert state is not None
        assert driver is not None
        combined = ModelWeights({n: model[n] + 1.0 for n in model.names}, require_aggr=model.require_aggr)
        async with driver._lock:  # noqa: SLF001 - no tick may run between the staged steps
            state.models.put(1, combined)
            state.completing.add(1)
            await DurableUpdates(state.store, state.instance, 1, state.ttl).publish_model(1, encode_model(combined))
            await driver.fail(1, "Global timer timeout! This iteration is invalid. Proceed to next iteration.")
        await server.wait_iteration(2)
        published = await read_model(state.store, state.instance)
        assert state.models.get(1) == model
        assert published is not None
        assert published[0] == 1
        assert decode_model(published[1]) == model


async def test_a_stop_right_after_the_last_update_lets_the_combine_finish(redis_address: str, fl_name: str,
                                                                          tmp_path: Path) -> None:
    # The last update is folded and its combine is under way when the server is told to stop: the iteration has
    # everything it needs, so it succeeds, and what is stored, published and written agrees.
    model = ut_model()
    async with running_server(ut_config(redis_address, fl_name), model, tmp_path) as server:
        state = server.node.state
        assert state is not None
        await server.start_fl_job("1001", data_size=1)
        upload = {n: np.full(model[n].shape, 7.0, np.float32) for n in model.aggregated_names}
        assert parse_response_update_model(await server.update_model("1001", 1, upload)).retcode == 200
        await server.node.stop()  # at once, while the combine task runs
        status = await state.store.read_status(state.instance)
        published = await read_model(state.store, state.instance)
    assert status is not None
    assert (status.iteration, status.last_success) == (2, True)
    assert published is not None
    assert published[0] == 1
    assert decode_model(published[1]) == state.models.get(1)
    np.testing.assert_array_equal(decode_model(published[1])["feature_bn"], [7.0])
    assert read_all(tmp_path / "metrics.json")[-1]["iterationResult"] == "success"


async def test_a_failure_during_a_slow_combine_drops_its_aggregate(redis_address: str, fl_name: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Another server's timer (or a disable) ends the iteration while this one still combines: the aggregate must be
    # neither stored nor published, and every server carries the previous model forward.
    import mindfed.server.iteration as driver_module  # noqa: PLC0415

    real_combine = driver_module.combine
    combining = asyncio.Event()

    async def slow_combine(state, iteration):  # a slow peer or a long replay from Redis, staged
        result = await real_combine(state, iteration)
        combining.set()
        await asyncio.sleep(1.0)
        return result

    monkeypatch.setattr(driver_module, "combine", slow_combine)
    model = ut_model()
    async with running_server(ut_config(redis_address, fl_name), model, tmp_path) as server:
        state, driver = server.node.state, server.node._driver  # noqa: SLF001 - the other server's failure
        assert state is not None
        assert driver is not None
        await server.start_fl_job("1001", data_size=1)
        upload = {n: np.full(model[n].shape, 7.0, np.float32) for n in model.aggregated_names}
        assert parse_response_update_model(await server.update_model("1001", 1, upload)).retcode == 200
        await asyncio.wait_for(combining.wait(), 10)
        await driver.fail(1, "Global timer timeout! This iteration is invalid. Proceed to next iteration.")
        await server.wait_iteration(2)
        await asyncio.sleep(1.5)  # the combine returns and must drop its aggregate
        published = await read_model(state.store, state.instance)
        stored = state.models.get(1)
    assert stored == model
    assert published is None or decode_model(published[1]) == model
    assert read_all(tmp_path / "metrics.json")[-1]["iterationResult"] == "fail"
