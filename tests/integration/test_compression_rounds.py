"""DIFF_SPARSE_QUANT uploads and QUANT downloads through a real server (spec §8, §3.5): the aggregate equals the
decode reference, downloads decode within scale/2, bad compressed input gets MindSpore's answers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cluster import Server, running_server, ut_config

from mindfed.client.device import UploadCompression, downloaded_weights
from mindfed.compression import CompressedTensor, dequantize, encode_upload, sparse_indices, upload_diff
from mindfed.model.weights import ModelWeights
from mindfed.protocol import request_builders as rq
from mindfed.protocol.responses import parse_response_fl_job, parse_response_get_model, parse_response_update_model
from mindfed.protocol.views import ResponseUpdateModelView
from mindfed.server.combine import Totals
from mindfed.server.compressed_upload import CompressedContext
from mindfed.server.partials import PartialSums

pytestmark = pytest.mark.integration

RATE = 0.4
COMPRESSED = {"compression.upload_compress_type": "DIFF_SPARSE_QUANT", "compression.upload_sparse_rate": RATE,
              "compression.download_compress_type": "QUANT"}
VERIFY_FAILED = "Verify model feature map failed, retry later at time: "


def model() -> ModelWeights:
    """D = 1000 + 37 + 7 floats; `c` is not aggregated (but a device uploads it, as the Java client does)."""
    rng = np.random.default_rng(11)
    return ModelWeights({"a": rng.standard_normal((50, 20)), "b": rng.standard_normal(37),
                         "c": rng.standard_normal(7)}, require_aggr={"c": False})


def trained(received: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: (w + 0.1 * rng.standard_normal(w.shape)).astype(np.float32) for n, w in received.items()}


def reference(uploads: list[tuple[list[CompressedTensor], int]], names: list[str], latest: ModelWeights,
              iteration: int) -> dict[str, np.ndarray]:
    """Spec §8.1 decode, written out densely: Σ(scatter(x') + n·w_latest) / Σn per tensor, in float64."""
    sizes = [latest.sizes[n] for n in names]
    kept = sparse_indices(sum(sizes), RATE, iteration)
    offsets = np.cumsum([0, *sizes])
    total = {n: np.zeros(latest.sizes[n]) for n in names}
    for tensors, n in uploads:
        dense = np.zeros(offsets[-1])
        dense[kept] = np.concatenate([dequantize(t.codes, t.min_val, t.max_val) for t in tensors])
        for i, name in enumerate(names):
            total[name] += dense[offsets[i]:offsets[i + 1]] + n * latest.flat(name).astype(np.float64)
    data = sum(n for _, n in uploads)
    return {name: values / data for name, values in total.items()}


async def plain_model(server: Server, iteration: int) -> dict[str, np.ndarray]:
    await server.wait_model(iteration)
    body = await server.post("getModel", rq.build_request_get_model(server.fl_name, iteration, "1", (0,)))
    view = parse_response_get_model(body)
    assert view.download_compress_type == 0
    return downloaded_weights(view)


def compressed_body(server: Server, fl_id: str, iteration: int, tensors: list[CompressedTensor],
                    rate: float = RATE, name_vec: list[str] | None = None, **kw: object) -> bytes:
    return rq.build_request_update_model(
        server.fl_name, fl_id, iteration, None, "1", 1.0, 0.5,
        compress_feature_map=[(t.name, t.codes, t.min_val, t.max_val) for t in tensors], upload_compress_type=1,
        upload_sparse_rate=rate, name_vec=[t.name for t in tensors] if name_vec is None else name_vec, **kw)


async def test_compressed_round_trip_equals_the_decode_reference(redis_address: str, fl_name: str,
                                                                 tmp_path: Path) -> None:
    # Prepare: three devices join; startFLJob announces DIFF_SPARSE_QUANT at 0.4 and sends the model as QUANT
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 3, **COMPRESSED})
    initial = model()
    async with running_server(cfg, initial, tmp_path) as server:
        uploads = []
        for k, n in enumerate((5, 17, 40)):
            job = parse_response_fl_job(await server.start_fl_job(f"d{k}", data_size=n))
            assert (job.retcode, job.upload_compress_type, job.download_compress_type) == (200, 1, 2)
            assert job.upload_sparse_rate == np.float32(RATE)
            assert len(job.feature_map) == 0
            received = downloaded_weights(job)
            assert sorted(received) == ["a", "b", "c"]  # QUANT sends every weight
            for name, values in received.items():
                t = next(t for t in job.compress_feature_map if t.name == name)
                assert np.abs(values - initial.flat(name)).max() <= ((t.max_val - t.min_val) / 255 + 1e-10) / 2 + 1e-6
            # Execute: the device SDK's encode (diff against the weights received, name_vec = received order)
            compression = UploadCompression.announced(job, received, n)
            assert compression is not None
            weights_times_n = {name: w * n for name, w in trained(received, k).items()}
            uploads.append((compression.encode(weights_times_n, job.iteration), n))
            answer = await _upload(server, f"d{k}", job.iteration, compression, weights_times_n)
            assert (answer.retcode, answer.reason) == (200, "success not ready")
        got = await plain_model(server, 1)
        quant = downloaded_weights(parse_response_get_model(await server.get_model(1)))
    # Assert: the aggregate is the dense decode reference; `c` (not aggregated) keeps its value
    expect = reference(uploads, ["a", "b", "c"], initial, 1)
    for name in ("a", "b"):
        np.testing.assert_allclose(got[name], expect[name], rtol=1e-5, atol=1e-5)
    assert sorted(got) == ["a", "b"]
    assert sorted(quant) == ["a", "b", "c"]
    got["c"] = initial.flat("c")
    for name in ("a", "b", "c"):  # QUANT download: within half a quantisation step of the model
        scale = (got[name].max() - got[name].min()) / 255 + 1e-10
        assert np.abs(quant[name] - got[name]).max() <= scale / 2 + 1e-6


async def _upload(server: Server, fl_id: str, iteration: int, compression: UploadCompression,
                  weights_times_n: Mapping[str, np.ndarray]) -> ResponseUpdateModelView:
    tensors = compression.encode(weights_times_n, iteration)
    return parse_response_update_model(await server.post("updateModel", compressed_body(server, fl_id, iteration,
                                                                                       tensors)))


async def test_download_is_plain_unless_the_device_lists_quant(redis_address: str, fl_name: str,
                                                               tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2, **COMPRESSED})
    initial = model()
    async with running_server(cfg, initial, tmp_path) as server:
        job = parse_response_fl_job(await server.start_fl_job("p", data_size=3, download_compress_types=[0]))
        assert (job.retcode, job.download_compress_type, len(job.compress_feature_map)) == (200, 0, 0)
        assert job.upload_compress_type == 1
        plain = downloaded_weights(job)
        for name in initial.names:
            np.testing.assert_array_equal(plain[name], initial.flat(name))
        initial_get = parse_response_get_model(await server.post(
            "getModel", rq.build_request_get_model(server.fl_name, 0, "1", (0, 2))))
        assert initial_get.download_compress_type == 2
        assert len(initial_get.feature_map) == 0


async def test_bad_compressed_uploads_get_mindspore_answers(redis_address: str, fl_name: str,
                                                            tmp_path: Path) -> None:
    # Prepare: one honest device and one probing the checks of spec §3.5 step 7
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2, **COMPRESSED})
    initial = model()
    names = initial.names
    async with running_server(cfg, initial, tmp_path) as server:
        for fl_id in ("bad", "good"):
            assert parse_response_fl_job(await server.start_fl_job(fl_id, data_size=4)).retcode == 200
        diffs = {n: upload_diff(initial.flat(n) * 4 + 1.0, initial.flat(n), 4) for n in names}
        good = encode_upload(diffs, names, RATE, 1)
        nan_min = [good[0]._replace(min_val=math.nan), *good[1:]]
        inf_max = [good[0]._replace(max_val=math.inf), *good[1:]]
        swapped = [good[0]._replace(min_val=good[0].max_val + 1.0), *good[1:]]
        longer = [good[0]._replace(codes=np.append(good[0].codes, np.int8(3))), *good[1:]]
        shorter = [good[0]._replace(codes=good[0].codes[:-1]), *good[1:]]
        cases = {
            "rate mismatch": compressed_body(server, "bad", 1, good, rate=0.5),
            "rate off by one ulp": compressed_body(server, "bad", 1, good, rate=float(np.nextafter(np.float32(RATE),
                                                                                                np.float32(1)))),
            "min > max": compressed_body(server, "bad", 1, swapped),
            "NaN min": compressed_body(server, "bad", 1, nan_min),
            "Inf max": compressed_body(server, "bad", 1, inf_max),
            "one value too many": compressed_body(server, "bad", 1, longer),
            "one value too few": compressed_body(server, "bad", 1, shorter),
            "empty name_vec": compressed_body(server, "bad", 1, good, name_vec=[]),
            "name_vec differs": compressed_body(server, "bad", 1, good, name_vec=list(reversed(names))),
            "unknown name": compressed_body(server, "bad", 1, [good[0]._replace(name="zz"), *good[1:]]),
            "empty compress_feature_map": compressed_body(server, "bad", 1, [], name_vec=names),
            "QUANT upload": rq.build_request_update_model(
                server.fl_name, "bad", 1, None, "1", compress_feature_map=[tuple(t) for t in good],
                upload_compress_type=2, upload_sparse_rate=RATE, name_vec=names),
        }
        # Execute / Assert: each is refused as MindSpore refuses it, and the server keeps serving
        for case, body in cases.items():
            answer = parse_response_update_model(await server.post("updateModel", body))
            assert answer.retcode == 400, case
            assert answer.reason.startswith(VERIFY_FAILED), (case, answer.reason)
            assert answer.reason[len(VERIFY_FAILED):].isdigit(), case
        missing = rq.build_request_update_model(server.fl_name, "bad", 1, None, "1", upload_compress_type=1,
                                                upload_sparse_rate=RATE, name_vec=names)
        schema = await server.post("updateModel", missing)
        assert parse_response_update_model(schema).reason == "Verify flatbuffers schema failed for RequestUpdateModel."
        for fl_id in ("bad", "good"):
            answer = parse_response_update_model(await server.post("updateModel", compressed_body(server, fl_id, 1,
                                                                                                good)))
            assert (answer.retcode, answer.reason) == (200, "success not ready")
        got = await plain_model(server, 1)
    expect = reference([(good, 4), (good, 4)], names, initial, 1)
    for name in ("a", "b"):
        np.testing.assert_allclose(got[name], expect[name], rtol=1e-5, atol=1e-5)


async def test_compressed_upload_needs_the_configured_mode(redis_address: str, fl_name: str, tmp_path: Path) -> None:
    cfg = ut_config(redis_address, fl_name, **{"round.start_fl_job_threshold": 2})
    initial = model()
    async with running_server(cfg, initial, tmp_path) as server:
        job = parse_response_fl_job(await server.start_fl_job("x", data_size=2))
        assert (job.upload_compress_type, job.download_compress_type) == (0, 0)
        good = encode_upload({n: np.ones(initial.sizes[n], np.float32) for n in initial.names}, initial.names, RATE, 1)
        answer = parse_response_update_model(await server.post("updateModel", compressed_body(server, "x", 1, good)))
        assert answer.retcode == 400
        assert answer.reason.startswith(VERIFY_FAILED)


def test_logged_compressed_bodies_replay_as_they_were_folded() -> None:
    # Prepare: the aggregator replaying another server's logged bodies, one plain and one compressed
    latest = model()
    names = latest.names
    context = CompressedContext(True, float(np.float32(RATE)), 3, latest, frozenset({"a", "b"}))
    totals = Totals(PartialSums({n: np.zeros(latest.sizes[n], np.float32) for n in ("a", "b")},
                                {"a": 0, "b": 0}, []))
    diffs = {n: upload_diff(latest.flat(n) * 6 + 0.5, latest.flat(n), 6) for n in names}
    tensors = encode_upload(diffs, names, RATE, 3)
    body = rq.build_request_update_model("job", "z", 3, None, "1", compress_feature_map=[tuple(t) for t in tensors],
                                         upload_compress_type=1, upload_sparse_rate=RATE, name_vec=names)
    plain = rq.build_request_update_model("job", "y", 3, [("a", latest.flat("a") * 2), ("b", latest.flat("b") * 2)],
                                          "1")
    # Execute
    totals.add_logged("z", body, 6, context)
    totals.add_logged("y", plain, 2, context)
    totals.add_logged("z", body, 6, context)  # counted once
    # Assert
    expect = reference([(tensors, 6)], names, latest, 3)
    assert totals.data_sizes == {"a": 8, "b": 8}
    assert totals.tags == {"y", "z"}
    for name in ("a", "b"):
        np.testing.assert_allclose(totals.sums[name], expect[name] * 6 + 2 * latest.flat(name), rtol=1e-5,
                                   atol=1e-5)
    with pytest.raises(Exception, match="cannot be decoded"):
        totals.add_logged("w", body, 6, None)
