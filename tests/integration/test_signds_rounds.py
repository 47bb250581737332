"""SIGNDS through a real server and Redis (spec §7.4, §3.5): the aggregate is ParseSignDSFeatureMap's formula exactly,
DSParams carry the iteration's r_est and it adapts once between iterations, malformed uploads get MindSpore's reason
and never stop the server, and logged bodies replay as they were folded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from tests.integration.cluster import Server, running_server, ut_config

from mindfed.cache.keys import JobKeys
from mindfed.cache.signds import SignDSCache, SignDSParams
from mindfed.cache.store import CacheStore, Ttl
from mindfed.model.weights import ModelWeights
from mindfed.protocol import request_builders as rq
from mindfed.protocol.responses import parse_response_fl_job, parse_response_update_model
from mindfed.server.combine import Totals
from mindfed.server.partials import PartialSums
from mindfed.server.signds_upload import SignDSContext

pytestmark = pytest.mark.integration

SIGNDS = {"encrypt.encrypt_train_type": "SIGNDS", "round.start_fl_job_threshold": 2}  # the seed's signds section
VERIFY_FAILED = "Verify model feature map failed, retry later at time: "


def model() -> ModelWeights:
    """Eighths (exact in float32); `c` is not aggregated. D over ("b", "a") = 3 + 20."""
    rng = np.random.default_rng(5)
    return ModelWeights({"a": rng.integers(-16, 16, (4, 5)) / 8, "b": rng.integers(-16, 16, 3) / 8,
                         "c": np.ones(2)}, require_aggr={"c": False})


def signds_body(fl_name: str, fl_id: str, iteration: int, names: list[str], sign: int,
                index_array: list[int] | None, b_hat: str = "0") -> bytes:
    empty = np.zeros(0, np.float32)
    return rq.build_request_update_model(fl_name, fl_id, iteration, [(n, empty) for n in names], "1", 1.0, 0.5,
                                         sign=sign, index_array=index_array, signds_b_hat=b_hat)


async def set_r_est(redis_address: str, server: Server, text: str) -> None:
    host, port = redis_address.rsplit(":", 1)
    client = aioredis.Redis(host=host, port=int(port), decode_responses=True)
    try:
        assert server.node.state is not None
        await client.set(JobKeys(server.fl_name).instance(server.node.state.instance).signds_r_est, text)
    finally:
        await client.aclose()


def expected(initial: ModelWeights, uploads: list[tuple[list[str], int, list[int], int]], g: float
             ) -> dict[str, np.ndarray]:
    """Σ n·(w + g·sign at the indices over the named tensors' concatenation) / Σ n, densely, per aggregated tensor."""
    total = {n: np.zeros(initial.sizes[n]) for n in ("a", "b")}
    data = 0
    for names, sign, indices, n in uploads:
        flat = np.concatenate([initial.flat(name).astype(np.float64) for name in names])
        flat[indices] += g * sign
        offset = 0
        for name in names:
            if name in total:
                total[name] += n * flat[offset:offset + initial.sizes[name]]
            offset += initial.sizes[name]
        data += n
    return {n: v / data for n, v in total.items()}


async def test_aggregate_is_the_reconstruction_formula_and_r_est_adapts_once(redis_address: str, fl_name: str,
                                                                             tmp_path: Path) -> None:
    # Prepare: r_est = 1/16, so g = 3 × (1.0 × 2) × 1/16 = 0.375 is exact; two devices with known sign/indices/n
    cfg = ut_config(redis_address, fl_name, **SIGNDS)
    initial = model()
    uploads = [(["b", "a"], 1, [0, 5, 22], 3), (["a", "b", "c"], -1, [2, 3, 21, 22, 24], 5)]
    async with running_server(cfg, initial, tmp_path) as server:
        await set_r_est(redis_address, server, "0.062500")
        for k, (_, _, _, n) in enumerate(uploads):
            job = parse_response_fl_job(await server.start_fl_job(f"d{k}", data_size=n))
            assert job.retcode == 200
            assert job.fl_plan is not None
            assert job.fl_plan.cipher is not None
            assert (job.fl_plan.cipher.encrypt_type, job.fl_plan.cipher.signds_r_est) == ("SIGNDS", 0.0625)
            assert job.upload_compress_type == 0  # compression is forced off under SIGNDS
        # Execute
        for k, (names, sign, indices, _) in enumerate(uploads):
            answer = parse_response_update_model(await server.post(
                "updateModel", signds_body(fl_name, f"d{k}", 1, names, sign, indices, b_hat="0")))
            assert (answer.retcode, answer.reason) == (200, "success not ready")
        view = await server.wait_model(1)
        got = {t.name: np.array(t.data) for t in view.feature_map}
        await server.wait_iteration(2)
        job2 = parse_response_fl_job(await server.start_fl_job("d9", data_size=1, iteration=1))
    # Assert: exactly the formula; both b̂ "0", not reached → r_est × 5 for iteration 2 (once)
    expect = expected(initial, uploads, 0.375)
    for name in ("a", "b"):
        np.testing.assert_array_equal(got[name], expect[name].astype(np.float32))
    assert job2.fl_plan is not None
    assert job2.fl_plan.cipher is not None
    assert job2.fl_plan.cipher.signds_r_est == np.float32(0.3125)


async def test_malformed_signds_uploads_get_mindspore_reasons(redis_address: str, fl_name: str,
                                                              tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **SIGNDS)
    initial = model()
    async with running_server(cfg, initial, tmp_path) as server:
        for fl_id in ("bad", "good"):
            assert parse_response_fl_job(await server.start_fl_job(fl_id, data_size=2)).retcode == 200
        names = ["a", "b"]
        cases = {
            "no index_array": signds_body(fl_name, "bad", 1, names, 1, None),
            "empty index_array": signds_body(fl_name, "bad", 1, names, 1, []),
            "101 entries": signds_body(fl_name, "bad", 1, ["a", "b", "c"] * 1, 1, list(range(101))),
            "index = D": signds_body(fl_name, "bad", 1, names, 1, [0, 23]),
            "negative index": signds_body(fl_name, "bad", 1, names, 1, [-1, 4]),
            "unsorted": signds_body(fl_name, "bad", 1, names, -1, [5, 4]),
            "duplicate": signds_body(fl_name, "bad", 1, names, -1, [4, 4]),
            "unknown name": signds_body(fl_name, "bad", 1, ["a", "zz"], 1, [1]),
            "repeated name": signds_body(fl_name, "bad", 1, ["a", "a"], 1, [1]),
        }
        # Execute / Assert
        for case, body in cases.items():
            answer = parse_response_update_model(await server.post("updateModel", body))
            assert answer.retcode == 400, case
            assert answer.reason.startswith(VERIFY_FAILED), (case, answer.reason)
        only_c = parse_response_update_model(await server.post("updateModel", signds_body(
            fl_name, "bad", 1, ["c"], 1, [0])))
        assert (only_c.retcode, only_c.reason) == (400, "Feature map is empty for fl id bad")
        # sign = 0 is an old client's plain upload (w·n), as ParseSignDSFeatureMap falls back to ParseFeatureMap
        plain = parse_response_update_model(await server.update_model("bad", 1, {
            "a": initial.flat("a") * 2, "b": initial.flat("b") * 2}))
        assert (plain.retcode, plain.reason) == (200, "success not ready")
        good = parse_response_update_model(await server.post("updateModel", signds_body(
            fl_name, "good", 1, names, 1, [0, 22], b_hat="1")))
        assert (good.retcode, good.reason) == (200, "success not ready")
        view = await server.wait_model(1)
    got = {t.name: np.array(t.data) for t in view.feature_map}
    g = float(np.float32(3.0) * np.float32(2.0) * np.float32(1e-5))
    expect = expected(initial, [(["a", "b"], 0, [], 2), (["a", "b"], 1, [0, 22], 2)], g)
    for name in ("a", "b"):
        np.testing.assert_allclose(got[name], expect[name], rtol=1e-6, atol=1e-7)


def test_logged_signds_bodies_replay_as_they_were_folded() -> None:
    # Prepare: the aggregator replaying another server's logged SignDS body with that iteration's r_est
    latest = model()
    context = SignDSContext(SignDSParams(0.0625, 0), 1.0, 2, latest, frozenset({"a", "b"}))
    totals = Totals(PartialSums({n: np.zeros(latest.sizes[n], np.float32) for n in ("a", "b")},
                                {"a": 0, "b": 0}, []))
    body = signds_body("job", "z", 3, ["b", "a"], -1, [1, 2, 3, 20])
    # Execute
    totals.add_logged("z", body, 4, None, context)
    totals.add_logged("z", body, 4, None, context)  # counted once
    # Assert
    expect = expected(latest, [(["b", "a"], -1, [1, 2, 3, 20], 4)], 0.375)
    assert totals.data_sizes == {"a": 4, "b": 4}
    for name in ("a", "b"):
        np.testing.assert_array_equal(totals.sums[name], (expect[name] * 4).astype(np.float32))


async def test_servers_racing_for_the_parameters_all_get_the_one_snapshot(redis_address: str, fl_name: str) -> None:
    """Twelve servers (own connections, already open) read an iteration's parameters for the first time at once, as
    after a switch: the WATCH losers retry instead of failing (a CacheError would answer devices safemode), and all
    read the one adaptation."""
    stores = [CacheStore.connect(redis_address, fl_name) for _ in range(12)]
    try:
        caches = [SignDSCache(store, "race", Ttl.from_window(60000)) for store in stores]
        await asyncio.gather(*(store.ping() for store in stores))
        for round_ in range(2, 12):
            for b_hat in ("0", "0", "0", "0"):
                await caches[0].push_b_hat(round_ - 1, b_hat)
            got = await asyncio.gather(*(cache.params(round_, 4, 0.1) for cache in caches))
            assert len(set(got)) == 1
    finally:
        for store in stores:
            await store.close()
    assert got[0].r_est > 5e-5  # adapted once per iteration (x 5 while not reached), not skipped
