"""startFLJob reasons and codes of spec §3.5, against a real server over HTTP and a real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.cluster import running_server, ut_config, ut_model

from mindfed.protocol.responses import parse_response_fl_job

pytestmark = pytest.mark.integration


async def test_start_fl_job_refusals_follow_mindspore(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    # Prepare
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        # Execute / Assert: data size bounds
        small = parse_response_fl_job(await server.start_fl_job("1001", data_size=0))
        assert (small.retcode, small.reason) == (300, "FL job data size is not enough.")
        large = parse_response_fl_job(await server.start_fl_job("1001", data_size=0x10000))
        assert (large.retcode, large.reason) == (300, "FL job data size is too large.")
        assert int(large.next_req_time) > 0
        # first join: all 4 features, including the require_aggr=False one
        first = parse_response_fl_job(await server.start_fl_job("1001"))
        assert (first.retcode, first.reason, first.iteration, first.is_selected) == (200, "success", 1, True)
        assert sorted(t.name for t in first.feature_map) == ["feature_bn", "feature_bn2", "feature_conv",
                                                            "feature_conv2"]
        assert first.fl_plan is not None
        assert first.fl_plan.iterations == 5
        assert first.upload_compress_type == 0
        assert first.download_compress_type == 0
        again = parse_response_fl_job(await server.start_fl_job("1001"))
        assert (again.retcode, again.reason) == (300, "Updating device metadata failed for fl id 1001")
        second = parse_response_fl_job(await server.start_fl_job("1002"))
        assert second.retcode == 200
        third = parse_response_fl_job(await server.start_fl_job("1003"))
        assert third.retcode == 300
        assert third.reason == "Current amount for startFLJob has reached the threshold. Please startFLJob later."
        # once full, the count comes first (step 3), before the data size (read from Redis first) and before a
        # device's second join (the admission script's own first check)
        for fl_id, data_size in (("1004", 0), ("1001", 100)):
            late = parse_response_fl_job(await server.start_fl_job(fl_id, data_size=data_size))
            assert (late.retcode, late.reason) == (300, third.reason), (fl_id, data_size)


async def test_start_fl_job_success_response_is_shared_bytes(redis_address: str, fl_name: str,
                                                             tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 3})
    async with running_server(cfg, ut_model(), tmp_path) as server:
        a = await server.start_fl_job("a")
        b = await server.start_fl_job("b")
        assert a == b  # one FlatBuffers build per iteration, as MindSpore's response cache


async def test_start_fl_job_without_fl_id_gets_the_plain_text(redis_address: str, fl_name: str,
                                                              tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name)
    async with running_server(cfg, ut_model(), tmp_path) as server:
        body = await server.start_fl_job("x", omit={"fl_id"})
        assert body == b"Verify flatbuffers schema failed for RequestFLJob."
        bad = parse_response_fl_job(await server.post("startFLJob", b"\x01\x02\x03\x04garbage"))
        assert (bad.retcode, bad.reason) == (400, "The schema of RequestFLJob is invalid.")
