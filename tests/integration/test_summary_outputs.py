"""What iterations leave behind: unsupervised evaluation (spec §12), URL prefix routing, bounded fold memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config, ut_model

from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.summary.metrics_file import read_all

pytestmark = pytest.mark.integration


async def test_unsupervised_silhouette_reaches_metrics(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # MindSpore's UT: vectors [3,2,1], [4,3,2], [3,4,5] with N = 3 → silhouette 0.363489
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 3,
                                               "unsupervised.eval_type": "SILHOUETTE_SCORE",
                                               "unsupervised.cluster_client_num": 3})
    model = ut_model()
    vectors = {"c1": [3.0, 2.0, 1.0], "c2": [4.0, 3.0, 2.0], "c3": [3.0, 4.0, 5.0]}
    async with running_server(cfg, model, tmp_path) as server:
        for fl_id in vectors:
            await server.start_fl_job(fl_id)
        for fl_id, vector in vectors.items():
            answer = await server.update_model(fl_id, 1, {"feature_bn": [1.0]},
                                               unsupervised_eval_items=[("logits", np.array(vector))])
            assert parse_response_update_model(answer).retcode == 200
        await server.wait_iteration(2)
    assert read_all(tmp_path / "metrics.json")[-1]["unsupervisedEval"] == pytest.approx(0.363489, abs=1e-6)


async def test_url_prefix_is_prepended_without_a_slash(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"client.http_url_prefix": "/fl/"})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        async with server.session.post(server.url + "startFLJob", data=b"") as plain:
            assert plain.status == 404  # only the prefixed routes exist
        job = parse_response_fl_job(await server.post("fl/startFLJob", _fl_job(server.fl_name)))
        assert job.retcode == 200


def _fl_job(fl_name: str) -> bytes:
    from mindfed.protocol.request_builders import build_request_fl_job  # noqa: PLC0415

    return build_request_fl_job(fl_name, "p", 0, 1, "1")


async def test_concurrent_uploads_are_folded_in_bounded_groups(redis_address: str, fl_name: str,
                                                               tmp_path: Path) -> None:
    # 48 devices upload at once: all are acknowledged, the sum is exact, and the fold queue never held more than
    # its bound (server memory is O(model + group), not O(clients)).
    devices = 48
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": devices})
    model = ut_model()
    async with running_server(cfg, model, tmp_path) as server:
        for i in range(devices):
            await server.start_fl_job(f"d{i}", data_size=1)
        answers = await asyncio.gather(*(server.update_model(f"d{i}", 1, {"feature_bn": [float(i)]})
                                         for i in range(devices)))
        assert all(parse_response_update_model(a).retcode == 200 for a in answers)
        stats = server.node.state.accumulator.stats
        assert stats.updates_folded == devices
        assert stats.peak_pending <= 16
        got = await server.wait_model(1)
        bn = next(np.asarray(t.data) for t in got.feature_map if t.name == "feature_bn")
        np.testing.assert_allclose(bn, [sum(range(devices)) / devices], rtol=1e-6)
