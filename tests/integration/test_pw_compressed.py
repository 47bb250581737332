"""PW_ENCRYPT composed with DIFF_SPARSE_QUANT (mindfed-only secure compressed uploads, docs/compression.md) through a
real server and Redis: 20 devices run the whole protocol with the SDK (PwSession, SecureCompression); the unmasked
aggregate equals FedAvg of the same quantised sparse updates, computed here from the formulas, for 0 %, 10 % and 30 %
of the devices dropping between shareSecrets and updateModel. Uploads the ring cannot sum are refused with a reason."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from tests.integration.cluster import running_server, ut_config
from tests.integration.ring_reference import quantised_fedavg

from mindfed.client.device import DeviceClient, PlainText, downloaded_weights
from mindfed.client.secagg import PwAborted, PwSession
from mindfed.client.upload_privacy import UploadPrivacy
from mindfed.config import FLConfig
from mindfed.errors import ProtocolError
from mindfed.model.weights import ModelWeights
from mindfed.protocol import request_builders as rq
from mindfed.protocol.codes import CompressType, ResponseCode
from mindfed.protocol.responses import parse_response_update_model
from mindfed.secagg import ring
from mindfed.server.combine import Totals
from mindfed.server.partials import PartialSums
from mindfed.server.ring_upload import RingContext

pytestmark = pytest.mark.integration

N = 20
DEADLINE_S = 60.0
RATE, BOUND = 0.4, 0.05


def model() -> ModelWeights:
    rng = np.random.default_rng(3)
    return ModelWeights({"a": rng.standard_normal((30, 20)), "b": rng.standard_normal(37),
                         "c": rng.standard_normal(250)})


def secure_config(redis_address: str, fl_name: str, update_ratio: float, t: int) -> FLConfig:
    return ut_config(redis_address, fl_name, **{
        "fl_iteration_num": 2, "round.start_fl_job_threshold": N, "round.update_model_ratio": update_ratio,
        "round.start_fl_job_time_window": 60000, "round.update_model_time_window": 60000,
        "round.global_iteration_time_window": 120000, "encrypt.encrypt_train_type": "PW_ENCRYPT",
        "encrypt.pw_encrypt.share_secrets_ratio": 1.0, "encrypt.pw_encrypt.cipher_time_window": 30000,
        "encrypt.pw_encrypt.reconstruct_secrets_threshold": t,
        "compression.upload_compress_type": "DIFF_SPARSE_QUANT", "compression.upload_sparse_rate": RATE,
        "compression.secure_compressed_upload": True, "compression.secure_quant_bound": BOUND})


def differences(iteration: int) -> list[tuple[dict[str, np.ndarray], int]]:
    """What each device's training changed, and its data size; some values fall outside the grid (clipped)."""
    rng = np.random.default_rng(100 + iteration)
    return [({k: rng.normal(0, 0.02, v.size).astype(np.float32) for k, v in model().items()},
             int(rng.integers(1, 65536))) for _ in range(N)]


async def device(urls: Sequence[str], fl_name: str, index: int, iteration: int, diff: dict[str, np.ndarray], n: int,
                 upload: bool, session: aiohttp.ClientSession) -> dict[str, np.ndarray] | None:
    """One device's iteration; returns the difference it uploaded (trained − received, float32), None if dropped."""
    client = DeviceClient(urls, fl_name, f"dev_{index:03d}", session=session, poll_interval_s=0.05)
    job = await client.join(iteration - 1, n, DEADLINE_S)
    assert not isinstance(job, PlainText), job
    assert job.retcode == ResponseCode.SUCCEED, job
    assert (job.upload_compress_type, job.upload_quant_bound) == (CompressType.SECURE_SPARSE_QUANT,
                                                                  float(np.float32(BOUND)))
    assert job.fl_plan is not None
    assert job.fl_plan.cipher is not None
    pw = PwSession(client, iteration, job.fl_plan.cipher.pw_t, job.fl_plan.cipher.pw_prime)
    await pw.share(DEADLINE_S)
    if not upload:
        return None
    received = downloaded_weights(job)
    trained = {k: received[k] + diff[k] for k in received}
    secure = UploadPrivacy().secure_compressed(job, received, trained, n, pw)
    assert secure is not None
    answer = await client.update_model_secure(iteration, secure.tensors, secure.rate, 0.5, 0.5)
    assert not isinstance(answer, PlainText), answer
    assert answer.retcode == ResponseCode.SUCCEED, answer.reason
    with contextlib.suppress(PwAborted):  # a late reconstructor may be told the round is complete
        await pw.reveal(DEADLINE_S)
    return {k: trained[k] - received[k] for k in received}


@pytest.mark.parametrize(("drop", "ratio"), [(0, 1.0), (2, 0.9), (6, 0.7)], ids=["0pct", "10pct", "30pct"])
async def test_aggregate_equals_quantised_fedavg_with_dropouts(redis_address: str, fl_name: str, tmp_path: Path,
                                                               drop: int, ratio: float) -> None:
    # Prepare
    cfg = secure_config(redis_address, fl_name, ratio, t=10)
    dropped = set(range(3, 3 + drop))
    diffs = differences(1)
    async with running_server(cfg, model(), tmp_path) as server, aiohttp.ClientSession() as session:
        # Execute
        uploaded = await asyncio.gather(*(device([server.url.rstrip("/")], fl_name, i, 1, d, n, i not in dropped,
                                                 session) for i, (d, n) in enumerate(diffs)))
        got = await server.wait_model(1, timeout_s=30)

    # Assert
    kept = [(d, diffs[i][1]) for i, d in enumerate(uploaded) if d is not None]
    assert len(kept) == N - drop
    expected, unquantised = quantised_fedavg(model(), kept, 1, RATE, BOUND)
    served = {t.name: t.data for t in got.feature_map}
    err = max(float(np.max(np.abs(served[k] - expected[k]))) for k in expected)
    quant = max(float(np.max(np.abs(served[k] - unquantised[k]))) for k in expected)
    print(f"PW_ENCRYPT + secure DIFF_SPARSE_QUANT n={N} dropped={drop}: max abs error vs FedAvg of the dequantised "
          f"updates {err:.3g} (float32 rounding); vs the clipped sparse updates unquantised {quant:.3g} "
          f"(bound: half a step, {BOUND / 254:.3g})")
    assert err < 1e-6  # the ring sum is exact: only the float32 model (|w| < 5) rounds
    assert 0 < quant <= BOUND / 254 + 1e-6


async def test_uploads_the_ring_cannot_sum_are_refused_with_a_reason(redis_address: str, fl_name: str,
                                                                     tmp_path: Path) -> None:
    """A float (NO_COMPRESS) or MindSpore DIFF_SPARSE_QUANT upload, a changed grid or rate: RequestError naming it."""
    cfg = secure_config(redis_address, fl_name, 1.0, t=1)
    async with running_server(cfg, model(), tmp_path) as server:
        weights = {k: np.zeros(v.size, np.float32) for k, v in model().items()}
        await server.start_fl_job("dev_x", 10, 0)
        plain = await server.update_model("dev_x", 1, weights)
        codes = [(k, np.zeros(4, np.int8), -1.0, 1.0) for k in model().names]
        mindspore = await server.update_model("dev_x", 1, {}, compress_feature_map=codes, upload_compress_type=1,
                                              upload_sparse_rate=RATE, name_vec=model().names)
        other_rate = await server.update_model("dev_x", 1, {}, compress_feature_map=codes, upload_compress_type=3,
                                               upload_sparse_rate=0.5, name_vec=model().names)
        other_grid = await server.update_model("dev_x", 1, {}, compress_feature_map=codes, upload_compress_type=3,
                                               upload_sparse_rate=RATE, name_vec=model().names)
    reasons = [parse_response_update_model(body) for body in (plain, mindspore, other_rate, other_grid)]
    assert [r.retcode for r in reasons] == [ResponseCode.RequestError] * 4
    assert "secure compressed uploads only" in reasons[0].reason
    assert "got upload_compress_type 1" in reasons[1].reason
    assert "not the announced" in reasons[2].reason
    assert "announced grid" in reasons[3].reason


def test_logged_secure_bodies_replay_into_the_ring_slot_as_they_were_folded() -> None:
    # Prepare: the aggregator replaying a dead server's logged bodies (words with all bits in use: the limbs carry)
    latest = model()
    layout = ring.RingLayout.of(latest.sizes, latest.names, RATE, 4, BOUND)
    context = RingContext(layout, latest, frozenset(latest.names))
    rng = np.random.default_rng(9)
    words = [rng.integers(0, 2**32, layout.k, dtype=np.uint64).astype(np.uint32) for _ in range(2)]
    bodies = [rq.build_request_update_model("job", f"d{i}", 4, None, "1", compress_feature_map=ring.split_words(
        layout, w), upload_compress_type=3, upload_sparse_rate=RATE, name_vec=latest.names)
        for i, w in enumerate(words)]
    slot = np.zeros(ring.LIMBS * layout.k, np.float32)
    totals = Totals(PartialSums({ring.RING_SLOT: slot}, {ring.RING_SLOT: 0}, []))

    # Execute
    totals.add_logged("d0", bodies[0], 7, ring_context=context)
    totals.add_logged("d1", bodies[1], 9, ring_context=context)
    totals.add_logged("d0", bodies[0], 7, ring_context=context)  # counted once
    ring_total = ring.ring_sum(totals.sums[ring.RING_SLOT])

    # Assert
    np.testing.assert_array_equal(ring_total, words[0] + words[1])  # uint32 wraps: the sum mod 2^32
    assert totals.tags == {"d0", "d1"}
    totals.decode_ring(context, ring_total)
    assert ring.RING_SLOT not in totals.sums
    assert totals.data_sizes == dict.fromkeys(latest.names, 16)
    decoded = ring.decode(layout, ring_total, 16, latest)
    for name in latest.names:
        np.testing.assert_array_equal(totals.sums[name], decoded[name])
    other_grid = rq.build_request_update_model("job", "d2", 4, None, "1", compress_feature_map=[
        (n, c, -1.0, 1.0) for n, c, _, _ in ring.split_words(layout, words[0])], upload_compress_type=3,
        upload_sparse_rate=RATE, name_vec=latest.names)
    with pytest.raises(ProtocolError, match="cannot be replayed: .*announced grid"):
        totals.add_logged("d2", other_grid, 1, ring_context=context)
