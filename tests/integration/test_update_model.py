"""updateModel reasons and codes of spec §3.5, and the exactness of the aggregate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config, ut_model

from mindfed.cache.keys import JobKeys
from mindfed.protocol.responses import parse_response_get_model, parse_response_update_model
from mindfed.server.phase import IterationPhase
from mindfed.summary.metrics_file import read_all

pytestmark = pytest.mark.integration


def upload(model, scale: float, n: int) -> dict[str, np.ndarray]:
    """What a MindSpore device sends: its weights times its data size (spec §4.4)."""
    return {name: model[name] * scale * n for name in model.aggregated_names}


async def test_update_model_refusals_follow_mindspore(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 3,
                                               "round.update_model_ratio": 0.9})
    model = ut_model()
    async with running_server(cfg, model, tmp_path) as server:
        for fl_id in ("1001", "1002", "1003"):
            await server.start_fl_job(fl_id, data_size=1)
        # partial upload (only feature_bn) is accepted
        partial = parse_response_update_model(await server.update_model("1001", 1, {"feature_bn": [1.0]}))
        assert (partial.retcode, partial.reason) == (200, "success not ready")
        assert int(partial.next_req_time) > 0
        wrong_shape = parse_response_update_model(await server.update_model("1002", 1, {"feature_bn": [1.0, 2.0]}))
        assert wrong_shape.retcode == 400
        assert wrong_shape.reason.startswith("Verify model feature map failed")
        nan = parse_response_update_model(await server.update_model("1002", 1, {"feature_bn": [float("nan")]}))
        assert nan.retcode == 400
        assert nan.reason.startswith("Verify model feature map failed")
        unknown = parse_response_update_model(await server.update_model("1001_invalid", 1, {"feature_bn": [1.0]}))
        assert (unknown.retcode, unknown.reason) == (300, "devices_meta for 1001_invalid is not set. "
                                                          "Please retry later.")
        wrong_it = parse_response_update_model(await server.update_model("1002", 2, {"feature_bn": [1.0]}))
        assert wrong_it.retcode == 300
        assert wrong_it.reason.startswith("UpdateModel iteration number is invalid:2, current iteration:1")
        twice = parse_response_update_model(await server.update_model("1001", 1, {"feature_bn": [1.0]}))
        assert (twice.retcode, twice.reason) == (300, "Updating metadata of UpdateModelClientList failed "
                                                      "for fl id 1001")
        # another server has taken the remaining slots (T_u = ceil(3 * 0.9) = 3): the count says enough
        keys = JobKeys(fl_name).instance(server.node.state.instance).iteration(1)
        await server.node.state.store.redis.hset(keys.counts, "updateModel", 3)
        enough = parse_response_update_model(await server.update_model("1002", 1, {"feature_bn": [1.0]}))
        assert (enough.retcode, enough.reason) == (300, "Current amount for updateModel is enough. "
                                                        "Please retry later.")


async def test_aggregate_is_the_data_size_weighted_mean(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # Prepare: two devices with data sizes 10 and 40, losses 1 and 9 (MindSpore's all_reduce test)
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2})
    model = ut_model()
    rng = np.random.default_rng(3)
    w1 = {n: rng.standard_normal(model[n].shape).astype(np.float32) for n in model.aggregated_names}
    w2 = {n: rng.standard_normal(model[n].shape).astype(np.float32) for n in model.aggregated_names}
    async with running_server(cfg, model, tmp_path) as server:
        await server.start_fl_job("a", data_size=10)
        await server.start_fl_job("b", data_size=40)
        # Execute
        r1 = await server.update_model("a", 1, {n: w * 10 for n, w in w1.items()}, upload_loss=1.0)
        r2 = await server.update_model("b", 1, {n: w * 40 for n, w in w2.items()}, upload_loss=9.0)
        assert parse_response_update_model(r1).retcode == parse_response_update_model(r2).retcode == 200
        got = await server.wait_model(1)
        # Assert: sum(w*n)/sum(n), and the require_aggr=False weight is not served by getModel
        served = {t.name: np.asarray(t.data) for t in got.feature_map}
        assert sorted(served) == ["feature_bn", "feature_bn2", "feature_conv"]
        for name in served:
            expect = (w1[name].astype(np.float64) * 10 + w2[name] * 40) / 50
            np.testing.assert_allclose(served[name], expect.reshape(-1), rtol=1e-5, atol=1e-6)
        await server.wait_iteration(2)
    line = read_all(tmp_path / "metrics.json")[-1]
    assert line["currentIteration"] == 1
    assert line["iterationResult"] == "success"
    assert line["metricsLoss"] == pytest.approx((1 * 10 + 9 * 40) / 50)
    assert line["clientVisitedInfo"]["updateModelAcceptClientNum"] == 2


async def test_get_model_before_the_iteration_ends_is_not_ready(redis_address: str, fl_name: str,
                                                                tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        early = parse_response_get_model(await server.get_model(1))
        assert early.retcode == 201
        assert early.reason.startswith("The model is not ready yet for iteration 1.")
        initial = parse_response_get_model(await server.get_model(0))
        assert initial.retcode == 200


async def test_a_late_update_during_the_switch_from_a_successful_iteration_is_told_enough(
        redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # MindSpore answers "enough" until its switch, which starts up to a second after the last update; ours starts at
    # once, so during it a late update of the iteration that succeeded gets "enough" too, not the safemode text.
    async with running_server(ut_config(redis_address, fl_name), ut_model(), tmp_path) as server:
        state = server.node.state
        assert state is not None
        # the switch from a successful iteration 1, staged
        state.phase.enter(IterationPhase.SWITCHING, state.iteration, completed=1)

        late = parse_response_update_model(await server.update_model("1001", 1, {"feature_bn": [1.0]}))
        ahead = await server.update_model("1001", 2, {"feature_bn": [1.0]})
        join = await server.start_fl_job("1002")
        state.phase.enter(IterationPhase.RUNNING, state.iteration)

    assert late.retcode == 300  # OutOfTime
    assert late.reason == "Current amount for updateModel is enough. Please retry later."
    assert ahead == b"The cluster is in safemode."
    assert join == b"The cluster is in safemode."
