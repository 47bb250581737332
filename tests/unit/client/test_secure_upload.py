"""The device side of secure compressed uploads (client/secure_upload.py): what startFLJob must announce, and the
SDK refusing to upload unmasked codes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mindfed.client.secure_upload import SecureCompression
from mindfed.client.upload_privacy import UploadPrivacy
from mindfed.errors import PrivacyModeError, ProtocolError
from mindfed.protocol.codes import CompressType
from mindfed.protocol.plan import CipherParams
from mindfed.protocol.views import FLPlanView, ResponseFLJobView

RECEIVED = {"b": np.zeros(7, np.float32), "a": np.ones((3, 4), np.float32)}


def job(encrypt_type: str = "PW_ENCRYPT", compress: int = CompressType.SECURE_SPARSE_QUANT,
        bound: float = 0.05) -> ResponseFLJobView:
    plan = FLPlanView(server_mode="FEDERATED_LEARNING", fl_name="t", iterations=5, epochs=1, mini_batch=8, lr=0.01,
                      encrypt_type=encrypt_type, cipher=CipherParams(encrypt_type=encrypt_type))
    return ResponseFLJobView(retcode=200, reason="", iteration=3, is_selected=True, next_req_time="", fl_plan=plan,
                             feature_map=(), timestamp="", upload_compress_type=int(compress),
                             upload_sparse_rate=0.4, download_compress_type=0, compress_feature_map=(),
                             unsupervised_eval_flg="NOT_EVAL", upload_quant_bound=bound)


def test_the_layout_is_every_received_tensor_in_startfljob_order_on_the_announced_grid() -> None:
    secure = SecureCompression.announced(job(), RECEIVED, 5)
    assert secure is not None
    layout = secure.layout
    assert (layout.names, layout.sizes, layout.iteration) == (("b", "a"), (7, 12), 3)
    assert (layout.lo, layout.hi, layout.rate) == (-float(np.float32(0.05)), float(np.float32(0.05)),
                                                   float(np.float32(0.4)))


@pytest.mark.parametrize("compress", [CompressType.NO_COMPRESS, CompressType.DIFF_SPARSE_QUANT])
def test_other_upload_types_are_not_secure_compression(compress: CompressType) -> None:
    assert SecureCompression.announced(job(compress=compress), RECEIVED, 5) is None
    assert UploadPrivacy().secure_compressed(job(compress=compress), RECEIVED, RECEIVED, 5, None) is None


@pytest.mark.parametrize("bound", [0.0, -1.0, float("nan"), float("inf")])
def test_an_announcement_without_a_usable_grid_is_a_protocol_error(bound: float) -> None:
    with pytest.raises(ProtocolError, match="grid bound"):
        SecureCompression.announced(job(bound=bound), RECEIVED, 5)


def test_the_sdk_never_uploads_unmasked_codes() -> None:
    with pytest.raises(PrivacyModeError, match="need PW_ENCRYPT"):
        UploadPrivacy().secure_compressed(job(), RECEIVED, RECEIVED, 5, None)  # no PwSession to mask with
    not_pw = dataclasses.replace(job(), fl_plan=job("NOT_ENCRYPT").fl_plan)
    with pytest.raises(PrivacyModeError, match="need PW_ENCRYPT"):
        UploadPrivacy().secure_compressed(not_pw, RECEIVED, RECEIVED, 5, None)
