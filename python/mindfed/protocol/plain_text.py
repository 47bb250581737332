"""The plain-text bodies the server sends instead of a FlatBuffer (spec §3.3), and the
client rule that tells them apart.

The texts are MindSpore's (`CC/common/constants.h`), byte for byte: Java devices search
responses for them, so they are part of the wire format.
"""

from __future__ import annotations

TEXT_JOB_NOT_AVAILABLE = "The server's training job is disabled or finished."
TEXT_SAFEMODE = "The cluster is in safemode."
TEXT_INNER_ERROR = "An inner error occurred"
TEXT_JOB_NOT_READY = "The server's training job is not ready."
TEXT_VERIFY_FL_JOB = "Verify flatbuffers schema failed for RequestFLJob."
TEXT_VERIFY_UPDATE_MODEL = "Verify flatbuffers schema failed for RequestUpdateModel."

PLAIN_TEXT_MAX_BYTES = 512
"""Java devices treat bodies longer than this as FlatBuffers (`Common.java`)."""


def empty_output_text(round_name: str) -> str:
    """The body sent when a round produced no output (`kernel output empty`).

    Args:
        round_name: The round (URL path without slash), e.g. "startFLJob".

    Returns:
        "The output of the round {round_name} is empty."
    """
    return f"The output of the round {round_name} is empty."


def schema_invalid_text(table: str) -> str:
    """The `reason` of a RequestError answering a buffer that failed verification.

    Args:
        table: The request table name, e.g. "RequestFLJob".

    Returns:
        "The schema of {table} is invalid."
    """
    return f"The schema of {table} is invalid."


# Order matters: the first marker found names the body (Java checks "ready" first).
_MARKERS: tuple[tuple[str, str], ...] = (
    (TEXT_SAFEMODE, "safemode"),
    (TEXT_JOB_NOT_READY, "not_ready"),
    (TEXT_JOB_NOT_AVAILABLE, "finished"),
    (TEXT_INNER_ERROR, "inner_error"),
    (TEXT_VERIFY_FL_JOB, "verify_failed"),
    (TEXT_VERIFY_UPDATE_MODEL, "verify_failed"),
    ("The output of the round ", "empty_output"),
)


def classify_plain_text(body: bytes) -> str | None:
    """Says whether a response body is one of the server's plain texts, and which.

    Follows the Java device rule: only bodies of at most 512 bytes are searched for the
    marker strings (the texts may carry a ":<iteration>" suffix); longer bodies, and
    short ones without a marker, are FlatBuffers.

    Args:
        body: The raw HTTP response body.

    Returns:
        "safemode", "not_ready", "finished", "inner_error", "verify_failed",
        "empty_output", or None for a FlatBuffer.
    """
    if len(body) > PLAIN_TEXT_MAX_BYTES:
        return None
    text = body.decode("utf-8", errors="replace")
    for marker, label in _MARKERS:
        if marker in text:
            return label
    return None
