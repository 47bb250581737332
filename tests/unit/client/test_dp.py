"""DP_ENCRYPT on the device: clipping, the noise's σ, the adaptive clip, the mode dispatch, Laplace eval noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mindfed.client.dp import INITIAL_CLIP, DpDevice, clip_factor, dp_upload, l2_distance, secure_generator
from mindfed.client.laplace_eval import eval_items_for_upload, laplace_noised
from mindfed.client.upload_privacy import UploadPrivacy
from mindfed.errors import PrivacyModeError
from mindfed.privacy.analytic_gaussian import analytic_sigma
from mindfed.protocol.plan import CipherParams
from mindfed.protocol.views import FLPlanView, ResponseFLJobView


def weights(rng: np.random.Generator, scale: float = 1.0) -> dict[str, np.ndarray]:
    return {"conv": (scale * rng.standard_normal((6, 5))).astype(np.float32),
            "fc": (scale * rng.standard_normal(40)).astype(np.float32)}


def job(encrypt_type: str, iteration: int = 1, **cipher: float) -> ResponseFLJobView:
    params = CipherParams(encrypt_type=encrypt_type, dp_eps=50.0, dp_delta=0.01, dp_norm_clip=1.0, **cipher)
    plan = FLPlanView(server_mode="FEDERATED_LEARNING", fl_name="t", iterations=5, epochs=1, mini_batch=8, lr=0.01,
                      encrypt_type=encrypt_type, cipher=params)
    return ResponseFLJobView(retcode=200, reason="", iteration=iteration, is_selected=True, next_req_time="",
                             fl_plan=plan, feature_map=(), timestamp="", upload_compress_type=0,
                             upload_sparse_rate=0.0, download_compress_type=0, compress_feature_map=(),
                             unsupervised_eval_flg="NOT_EVAL")


def test_the_clipped_update_has_norm_at_most_c() -> None:
    rng = np.random.default_rng(1)
    before, after = weights(rng), weights(rng, 3.0)
    clip, n = 0.5, 7
    assert l2_distance(after, before, after) > clip  # the update really is clipped
    upload = dp_upload(before, after, n, 0.0, clip, rng)  # σ = 0: only the clipping is left
    clipped = {name: upload[name] / n for name in upload}
    assert l2_distance(clipped, before, after) == pytest.approx(clip, rel=1e-5)
    small = {name: before[name] + 1e-3 for name in before}  # a short update passes unchanged
    assert clip_factor(l2_distance(small, before, small), clip) == 1.0
    assert {name: v.shape for name, v in upload.items()} == {"conv": (6, 5), "fc": (40,)}
    assert all(v.dtype == np.float32 for v in upload.values())


def test_the_noise_has_the_analytic_sigma() -> None:
    rng = np.random.default_rng(2)
    before = {"w": np.zeros(200_000, np.float32)}
    after = {"w": np.zeros(200_000, np.float32)}  # Δ = 0: the upload is the noise, times n
    sigma = analytic_sigma(1.0, 1e-5, 0.05)
    upload = dp_upload(before, after, 3, sigma, 0.05, rng)["w"] / 3
    assert float(np.std(upload)) == pytest.approx(sigma, rel=0.05)
    assert abs(float(np.mean(upload))) < 5 * sigma / math.sqrt(upload.size)


def test_the_clip_adapts_as_java_update_dp_norm_clip() -> None:
    device = DpDevice(np.random.default_rng(3))
    assert device.clip == INITIAL_CLIP == 0.05
    before = {"w": np.zeros(4, np.float32)}
    moved = {"w": np.array([3.0, 4.0, 0.0, 0.0], np.float32)}  # ‖w_global − w_before‖ = 5
    assert device.adapt_clip(1, moved, before, 2.0) == 10.0  # iteration 1: set, even above 0.05
    assert device.adapt_clip(2, {"w": moved["w"] * 2}, before, 2.0) == 10.0  # larger: kept
    assert device.adapt_clip(3, {"w": moved["w"] / 5}, before, 2.0) == pytest.approx(2.0)  # smaller: taken


def test_upload_privacy_applies_dp_and_refuses_what_it_cannot_apply() -> None:
    rng = np.random.default_rng(4)
    before, after = weights(rng), weights(rng)
    plain = UploadPrivacy(np.random.default_rng(0)).protect(job("NOT_ENCRYPT"), before, after, 5)
    assert all(np.array_equal(plain[k], after[k] * 5) for k in after)
    privacy = UploadPrivacy(np.random.default_rng(0))
    noised = privacy.protect(job("DP_ENCRYPT"), before, after, 5)
    assert privacy.mode == "DP_ENCRYPT"
    assert not any(np.allclose(noised[k], plain[k]) for k in after)
    for mode in ("STABLE_PW_ENCRYPT", "SIGNDS", "SOMETHING_NEW"):
        with pytest.raises(PrivacyModeError, match=f"encrypt_type {mode}, which this device SDK cannot apply"):
            UploadPrivacy().protect(job(mode), before, after, 5)
    with pytest.raises(PrivacyModeError, match="PW_ENCRYPT but no PwSession"):
        UploadPrivacy().protect(job("PW_ENCRYPT"), before, after, 5)


def test_noise_is_not_replayable_without_a_test_generator() -> None:
    a, b = secure_generator().standard_normal(4), secure_generator().standard_normal(4)
    assert not np.array_equal(a, b)


def test_laplace_eval_noise_has_scale_one_over_eps() -> None:
    rng = np.random.default_rng(5)
    noised = laplace_noised(np.zeros(200_000), 4.0, rng)
    # Laplace(0, b): mean |x| = b
    assert float(np.mean(np.abs(noised))) == pytest.approx(0.25, rel=0.02)
    items = {"eval": np.ones(10, np.float32)}
    assert not np.allclose(eval_items_for_upload("LAPLACE", items, 4.0, rng)["eval"], 1.0)
    assert np.array_equal(eval_items_for_upload("NOT_ENCRYPT", items, 4.0, rng)["eval"], items["eval"])
    with pytest.raises(PrivacyModeError, match="unsupervised_eval_flg 'GAUSS'"):
        eval_items_for_upload("GAUSS", items, 4.0, rng)
    with pytest.raises(PrivacyModeError, match="laplace_eps > 0"):
        laplace_noised(np.zeros(3), 0.0, rng)
