"""The OpenAPI 3.1 description of the management API (and the dashboard's read) served at /openapi.json."""

from __future__ import annotations

from typing import Any

from mindfed.scheduler.hyper_params import OVERRIDABLE, UNSIGNED


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(summary: str, ok_schema: str, op_id: str, body: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": op_id,
        "responses": {
            "200": {"description": "Success (`code` is \"0\").",
                    "content": {"application/json": {"schema": _ref(ok_schema)}}},
            "400": {"description": "Refused; `error_message` says why.",
                    "content": {"application/json": {"schema": _ref("Error")}}},
        },
    }
    if body:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": _ref("HyperParamOverrides")}}}
    return op


def _path(summary: str, ok_schema: str, name: str, body: bool = False) -> dict[str, Any]:
    """MindSpore answers any method; GET and POST are the ones documented."""
    return {"get": _operation(summary, ok_schema, f"{name}Get", body=False),
            "post": _operation(summary, ok_schema, f"{name}Post", body=body)}


def _overrides_schema() -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, kind in OVERRIDABLE:
        if kind == UNSIGNED:
            props[name] = {"type": "integer", "minimum": 0}
        else:
            props[name] = {"type": "number", "exclusiveMinimum": 0}
    props["update_model_ratio"]["maximum"] = 1
    return {"type": "object", "properties": props,
            "description": "Overrides merged into the current hyper parameters; other keys are ignored."}


def _overview_schema() -> dict[str, Any]:
    nullable_int, nullable_num = {"type": ["integer", "null"]}, {"type": ["number", "null"]}
    nullable_str = {"type": ["string", "null"]}
    point = {"type": "object", "description": "One finished iteration, from its metrics line (spec §9).",
             "properties": {"instance": nullable_str, "iteration": nullable_int, "result": nullable_str,
                            "loss": nullable_num, "accuracy": nullable_num, "participants": nullable_int,
                            "started": nullable_int, "duration_ms": nullable_int, "end_time": nullable_str,
                            "reason": nullable_str}}
    count = {"type": "object", "properties": {"name": {"type": "string"}, "count": {"type": "integer"},
                                              "threshold": nullable_int, "started_ms": nullable_int}}
    visits = {"type": "object", "properties": {"name": {"type": "string"}, "total": {"type": "integer"},
                                               "accepted": {"type": "integer"}}}
    iteration = {"type": ["object", "null"], "properties": {
        "number": {"type": "integer"}, "of": nullable_int, "last_success": {"type": "boolean"},
        "last_result": {"type": "string"}, "aggregated": {"type": "integer"},
        "rounds": {"type": "array", "items": count}, "visits": {"type": "array", "items": visits}}}
    node = {"type": "object", "required": ["node_id", "role", "tcp_address"],
            "properties": {"node_id": {"type": "string"},
                           "role": {"type": "string", "enum": ["SCHEDULER", "SERVER", "WORKER"]},
                           "tcp_address": {"type": "string"}, "updates": {"type": "integer"},
                           "folded": {"type": "integer"}}}
    keys = ["code", "fl_name", "instance", "cluster_state", "running_state", "iteration", "now_ms", "nodes",
            "history"]
    return {"type": "object", "required": keys, "properties": {
        "code": {"type": "string", "const": "0"}, "fl_name": {"type": "string"}, "instance": nullable_str,
        "cluster_state": nullable_str, "running_state": nullable_str, "iteration": iteration,
        "now_ms": {"type": "integer"}, "nodes": {"type": "array", "items": node},
        "history": {"type": "array", "items": point, "description": "Oldest first, every instance of the job."}}}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict each call)."""
    node = {"type": "object", "required": ["node_id", "role", "tcp_address"],
            "properties": {"node_id": {"type": "string", "description": "`{ip}:{port}::{time}::{random}`"},
                           "role": {"type": "string", "enum": ["SERVER", "WORKER"]},
                           "tcp_address": {"type": "string"}}}
    nodes = {"type": "array", "items": _ref("Node"), "description": "Live nodes; absent when there are none."}
    code_ok = {"type": "string", "const": "0"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "mindfed scheduler management API", "version": "1.0.0",
                 "description": "MindSpore Federated's scheduler routes (any HTTP method is accepted)."},
        "paths": {
            "/state": _path("Cluster state and live nodes.", "State", "state"),
            "/enableFLS": _path("Enable a disabled instance.", "Message", "enableFLS"),
            "/disableFLS": _path("Disable a running instance.", "Message", "disableFLS"),
            "/newInstance": _path("Start a new instance with hyper-parameter overrides.", "Message", "newInstance",
                                  body=True),
            "/queryInstance": _path("Live nodes and the current hyper parameters.", "QueryInstance",
                                    "queryInstance"),
            "/dashboard/api/overview": {"get": {
                "summary": "What the web dashboard (/dashboard/) shows: nodes, the iteration's live round counts, "
                           "the latest finished iterations' metrics. Needs the credential /state needs.",
                "operationId": "dashboardOverview",
                "responses": {"200": {"description": "The overview.",
                                      "content": {"application/json": {"schema": _ref("Overview")}}},
                              "400": {"description": "Redis cannot be reached.",
                                      "content": {"application/json": {"schema": _ref("Error")}}}}}},
        },
        "components": {"schemas": {
            "Node": node,
            "State": {"type": "object", "required": ["code", "message"],
                      "properties": {"code": code_ok, "message": {"type": "string"}, "nodes": nodes,
                                     "cluster_state": {"type": "string", "enum": [
                                         "CLUSTER_READY", "CLUSTER_DISABLE", "CLUSTER_FINISH"]}}},
            "Message": {"type": "object", "required": ["code", "message"],
                        "properties": {"code": code_ok, "message": {"type": "string"}}},
            "QueryInstance": {"type": "object", "required": ["code", "message", "result"],
                              "properties": {"code": code_ok, "message": {"type": "string"}, "nodes": nodes,
                                             "result": {"type": "object",
                                                        "description": "The hyper-parameter JSON."}}},
            "Error": {"type": "object", "required": ["code", "error_message"],
                      "properties": {"code": {"type": "string", "const": "1"},
                                     "error_message": {"type": "string"}}},
            "HyperParamOverrides": _overrides_schema(),
            "Overview": _overview_schema(),
        }},
    }
