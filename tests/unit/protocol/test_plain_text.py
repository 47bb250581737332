"""Plain-text bodies and the device rule that tells them from FlatBuffers."""

from __future__ import annotations

import numpy as np
import pytest

from mindfed.protocol.messages import (
    TEXT_INNER_ERROR,
    TEXT_JOB_NOT_AVAILABLE,
    TEXT_SAFEMODE,
    TEXT_VERIFY_FL_JOB,
    build_response_get_model,
    classify_plain_text,
    empty_output_text,
    schema_invalid_text,
)


def test_texts_are_mindspores_byte_for_byte() -> None:
    assert TEXT_JOB_NOT_AVAILABLE == "The server's training job is disabled or finished."
    assert TEXT_SAFEMODE == "The cluster is in safemode."
    assert TEXT_INNER_ERROR == "An inner error occurred"
    assert TEXT_VERIFY_FL_JOB == "Verify flatbuffers schema failed for RequestFLJob."
    assert schema_invalid_text("RequestFLJob") == "The schema of RequestFLJob is invalid."
    assert empty_output_text("getModel") == "The output of the round getModel is empty."


@pytest.mark.parametrize(
    ("body", "label"),
    [
        (TEXT_SAFEMODE.encode(), "safemode"),
        (TEXT_SAFEMODE.encode() + b":12", "safemode"),
        (TEXT_JOB_NOT_AVAILABLE.encode(), "finished"),
        (TEXT_INNER_ERROR.encode(), "inner_error"),
        (TEXT_VERIFY_FL_JOB.encode(), "verify_failed"),
        (empty_output_text("startFLJob").encode(), "empty_output"),
        (b"\xff\xfe garbage", None),
        (b"", None),
    ],
)
def test_short_bodies_are_classified_by_marker(body: bytes, label: str | None) -> None:
    assert classify_plain_text(body) == label


def test_long_bodies_are_flatbuffers_even_if_they_contain_a_marker() -> None:
    body = build_response_get_model(200, TEXT_SAFEMODE, 1, [("w", np.zeros(200, np.float32))], "1")
    assert len(body) > 512
    assert classify_plain_text(body) is None
