"""The OpenAPI 3.1 description of the management API served at /openapi.json."""

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
        }},
    }
