"""The device wire protocol in one import: parsers, builders, views, codes and texts.

Server code uses the request parsers and response builders; the device SDK, simulators
and tests use the request builders and response parsers. Parsers verify every buffer
first (`verifier`) and return frozen, zero-copy views (`views`).
"""

from __future__ import annotations

from mindfed.protocol.codes import CompressType, ResponseCode
from mindfed.protocol.plain_text import (
    PLAIN_TEXT_MAX_BYTES,
    TEXT_INNER_ERROR,
    TEXT_JOB_NOT_AVAILABLE,
    TEXT_JOB_NOT_READY,
    TEXT_SAFEMODE,
    TEXT_VERIFY_FL_JOB,
    TEXT_VERIFY_UPDATE_MODEL,
    classify_plain_text,
    empty_output_text,
    schema_invalid_text,
)
from mindfed.protocol.plan import CipherParams, FLPlanParams
from mindfed.protocol.request_builders import (
    build_request_fl_job,
    build_request_get_model,
    build_request_get_result,
    build_request_push_metrics,
    build_request_update_model,
)
from mindfed.protocol.requests import (
    parse_request_fl_job,
    parse_request_get_model,
    parse_request_get_result,
    parse_request_push_metrics,
    parse_request_update_model,
)
from mindfed.protocol.response_builders import (
    build_response_fl_job,
    build_response_get_model,
    build_response_get_result,
    build_response_push_metrics,
    build_response_update_model,
)
from mindfed.protocol.responses import (
    parse_response_fl_job,
    parse_response_get_model,
    parse_response_get_result,
    parse_response_push_metrics,
    parse_response_update_model,
)
from mindfed.protocol.verifier import verify
from mindfed.protocol.views import (
    CompressedTensor,
    FLPlanView,
    NamedTensor,
    RequestFLJobView,
    RequestGetModelView,
    RequestGetResultView,
    RequestPushMetricsView,
    RequestUpdateModelView,
    ResponseFLJobView,
    ResponseGetModelView,
    ResponseGetResultView,
    ResponseUpdateModelView,
)

__all__ = [
    "PLAIN_TEXT_MAX_BYTES",
    "TEXT_INNER_ERROR",
    "TEXT_JOB_NOT_AVAILABLE",
    "TEXT_JOB_NOT_READY",
    "TEXT_SAFEMODE",
    "TEXT_VERIFY_FL_JOB",
    "TEXT_VERIFY_UPDATE_MODEL",
    "CipherParams",
    "CompressType",
    "CompressedTensor",
    "FLPlanParams",
    "FLPlanView",
    "NamedTensor",
    "RequestFLJobView",
    "RequestGetModelView",
    "RequestGetResultView",
    "RequestPushMetricsView",
    "RequestUpdateModelView",
    "ResponseCode",
    "ResponseFLJobView",
    "ResponseGetModelView",
    "ResponseGetResultView",
    "ResponseUpdateModelView",
    "build_request_fl_job",
    "build_request_get_model",
    "build_request_get_result",
    "build_request_push_metrics",
    "build_request_update_model",
    "build_response_fl_job",
    "build_response_get_model",
    "build_response_get_result",
    "build_response_push_metrics",
    "build_response_update_model",
    "classify_plain_text",
    "empty_output_text",
    "parse_request_fl_job",
    "parse_request_get_model",
    "parse_request_get_result",
    "parse_request_push_metrics",
    "parse_request_update_model",
    "parse_response_fl_job",
    "parse_response_get_model",
    "parse_response_get_result",
    "parse_response_push_metrics",
    "parse_response_update_model",
    "schema_invalid_text",
    "verify",
]
