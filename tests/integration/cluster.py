"""Test helpers: start a real ServerNode over a real Redis and talk FlatBuffers to it over HTTP."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from mindfed.config import FLConfig, load
from mindfed.model.weights import ModelWeights
from mindfed.protocol import request_builders as rq
from mindfed.protocol import responses as rs
from mindfed.scheduler import SchedulerApp
from mindfed.server.node import ServerNode, ServerOptions

REPO = Path(__file__).resolve().parents[2]
LENET_YAML = REPO / "yamls" / "lenet.yaml"

# The model of MindSpore's own server tests (spec §14): feature_conv2 is not aggregated.
def ut_model() -> ModelWeights:
    rng = np.random.default_rng(7)
    return ModelWeights(
        {"feature_conv": rng.standard_normal((2, 3)), "feature_bn": rng.standard_normal(1),
         "feature_bn2": rng.standard_normal(1), "feature_conv2": rng.standard_normal((2, 3))},
        require_aggr={"feature_conv2": False})


def ut_config(redis_address: str, fl_name: str, **overrides: object) -> FLConfig:
    base: dict[str, object] = {
        "fl_name": fl_name, "distributed_cache.address": redis_address, "fl_iteration_num": 5,
        "round.start_fl_job_threshold": 1, "round.start_fl_job_time_window": 10000,
        "round.update_model_time_window": 10000, "round.global_iteration_time_window": 30000,
        "unsupervised.eval_type": "NOT_EVAL",
        "client.poll_hold_ms": 0}  # MindSpore's immediate SucNotReady; the hold has its own tests
    base.update(overrides)
    return load(LENET_YAML, base)


@dataclass
class Server:
    node: ServerNode
    session: aiohttp.ClientSession
    fl_name: str

    @property
    def url(self) -> str:
        return f"{self.node.scheme}://127.0.0.1:{self.node.port}/"

    async def post(self, round_name: str, body: bytes) -> bytes:
        async with self.session.post(self.url + round_name, data=body) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            return await resp.read()

    async def start_fl_job(self, fl_id: str, data_size: int = 1, iteration: int = 0, **kw: object) -> bytes:
        return await self.post("startFLJob", rq.build_request_fl_job(self.fl_name, fl_id, iteration, data_size,
                                                                     "2020/11/16/19/18", **kw))

    async def update_model(self, fl_id: str, iteration: int, weights: Mapping[str, np.ndarray],
                           **kw: object) -> bytes:
        fm = [(n, np.asarray(v, np.float32).reshape(-1)) for n, v in weights.items()]
        return await self.post("updateModel", rq.build_request_update_model(self.fl_name, fl_id, iteration, fm,
                                                                            "2020/11/16/19/18", **kw))

    async def get_model(self, iteration: int) -> bytes:
        return await self.post("getModel", rq.build_request_get_model(self.fl_name, iteration, "1"))

    async def get_result(self, iteration: int) -> bytes:
        return await self.post("getResult", rq.build_request_get_result(self.fl_name, iteration, "1"))

    async def wait_model(self, iteration: int, timeout_s: float = 10.0) -> rs.ResponseGetModelView:
        """Poll getModel until the model of `iteration` is served (safemode and SucNotReady are retried)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body = await self.get_model(iteration)
            if not body.startswith(b"The "):
                view = rs.parse_response_get_model(body)
                if view.retcode == 200:
                    return view
            await asyncio.sleep(0.02)
        raise AssertionError(f"model of iteration {iteration} not served within {timeout_s} s")

    async def wait_iteration(self, iteration: int, timeout_s: float = 10.0) -> None:
        """Wait until the server has switched to `iteration` (its local view)."""
        deadline = time.monotonic() + timeout_s
        while self.node.state is None or self.node.state.iteration != iteration or self.node.state.safemode:
            assert time.monotonic() < deadline, f"server still at iteration {self.node.state.iteration}"
            await asyncio.sleep(0.01)


def _connector(config: FLConfig) -> aiohttp.TCPConnector | None:
    """Under enable_ssl a client that reaches HTTPS servers: HTTPS itself is checked strictly in test_tls_http.py;
    here devices only need to get through, to servers whose certificate may come from a CA a test made foreign on
    purpose (test_node_tls.py)."""
    if not config.enable_ssl:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return aiohttp.TCPConnector(ssl=context)


@asynccontextmanager
async def running_server(config: FLConfig, model: ModelWeights, tmp_path: Path,
                         checkpoint_dir: Path | None = None, **options: Any) -> AsyncIterator[Server]:
    """A started ServerNode (stopped on exit); `options` are further ServerOptions (update_log=False, ...)."""
    node = ServerNode(config, model, ServerOptions(
        http_server_address="127.0.0.1:0", checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
        output_dir=tmp_path, tick_s=0.05, cache_wait_s=5.0, **options))
    await node.start()
    try:
        async with aiohttp.ClientSession(connector=_connector(config)) as session:
            yield Server(node, session, config.fl_name)
    finally:
        await node.stop()


class Scheduler:
    """A scheduler in this process and a client for its REST routes (every call bounded by 10 s)."""

    def __init__(self, app: SchedulerApp, session: aiohttp.ClientSession) -> None:
        self.app, self.session = app, session

    async def call(self, path: str, body: str | bytes | None = None,
                   method: str = "POST") -> tuple[int, dict[str, Any]]:
        async with self.session.request(method, self.app.url + path, data=body,
                                        timeout=aiohttp.ClientTimeout(total=10)) as resp:
            return resp.status, json.loads(await resp.text())

    async def ok(self, path: str, body: str | bytes | None = None) -> dict[str, Any]:
        status, reply = await self.call(path, body)
        assert (status, reply["code"]) == (200, "0"), reply
        return reply

    async def error(self, path: str, body: str | bytes | None = None) -> str:
        status, reply = await self.call(path, body)
        assert (status, reply["code"]) == (400, "1"), reply
        return str(reply["error_message"])

    async def nodes(self) -> list[dict[str, str]]:
        status, reply = await self.call("/state")
        return list(reply.get("nodes", [])) if status == 200 else []


@asynccontextmanager
async def running_scheduler(config: FLConfig, **options: Any) -> AsyncIterator[Scheduler]:
    """A started scheduler and a client for it; `options` go to SchedulerApp (ssl_server_password=...)."""
    app = SchedulerApp(config, "127.0.0.1:0", **options)
    await app.start()
    try:
        async with aiohttp.ClientSession(connector=_connector(config)) as session:
            yield Scheduler(app, session)
    finally:
        await app.stop()


def text(body: bytes) -> str:
    return body.decode()
