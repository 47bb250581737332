"""The demo's evaluator: fetches each iteration's global model the way a device does and scores the test split.

It also reads, from the cluster's Redis, how many updates each server accepted in the iteration (the per-server
counters stay readable for a minute after the iteration ends).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from mindfed.cache.connection import target_for
from mindfed.cache.iteration import IterationCache
from mindfed.cache.store import CacheStore, Ttl
from mindfed.cli.progress import DemoProgress
from mindfed.client.device import DeviceClient, PlainText, downloaded_weights
from mindfed.client.trainer import evaluate
from mindfed.config import FLConfig
from mindfed.data.device_data import DeviceData
from mindfed.privacy.accountant import last_iteration
from mindfed.protocol.codes import ResponseCode
from mindfed.summary.metrics_file import read_all

POLL_S = 0.1


async def observe(config: FLConfig, urls: list[str], test: DeviceData, num_class: int, progress: DemoProgress,
                  devices: asyncio.Task[object], metrics_path: Path, cache_address: str,
                  node_ids: list[str], ssl_context: ssl.SSLContext | None = None) -> list[dict[str, object]]:
    """Score the model of every iteration, asking a random one of `urls` each time.

    Returns one record per iteration: testAccuracy, testLoss and updatesByServer (node_id -> accepted updates, in the
    order of `node_ids`, then any server that joined later).
    """
    records: list[dict[str, object]] = []
    cache = dataclasses.replace(config.distributed_cache, address=cache_address)
    store = CacheStore.connect(target_for(cache, config.enable_ssl), config.fl_name)
    try:
        async with aiohttp.ClientSession() as session:
            client = DeviceClient(urls, config.fl_name, "demo_observer", session=session,
                                  url_prefix=config.client.http_url_prefix, ssl_context=ssl_context)
            for iteration in range(1, last_iteration(config) + 1):  # a DP budget may end the job sooner
                weights = await _model_after(client, iteration, devices)
                accuracy, loss = await asyncio.to_thread(evaluate, weights, test, num_class)
                line = await _server_line(metrics_path, iteration)
                by_server = await _updates_by_server(store, config, iteration, node_ids)
                records.append({"currentIteration": iteration, "testAccuracy": accuracy, "testLoss": loss,
                                "updatesByServer": by_server})
                progress.iteration_done(iteration, int(line.get("clientVisitedInfo", {}).get(
                    "updateModelAcceptClientNum", 0)), float(line.get("metricsLoss", float("nan"))), accuracy,
                    str(line.get("iterationResult", "?")), list(by_server.values()),
                    int(line.get("bytesReceived", 0)), int(line.get("bytesSent", 0)))
    finally:
        await store.close()
    return records


async def _updates_by_server(store: CacheStore, config: FLConfig, iteration: int,
                             node_ids: list[str]) -> dict[str, int]:
    instance = await store.current_instance()
    if instance is None:
        return {}
    ttl = Ttl.from_window(config.round.global_iteration_time_window)
    counts = await IterationCache(store, instance, iteration, ttl).servers_with_updates()
    ordered = {node_id: counts.pop(node_id, 0) for node_id in node_ids}
    return {**ordered, **dict(sorted(counts.items()))}


async def _model_after(client: DeviceClient, iteration: int, devices: asyncio.Task[object]) -> dict[str, np.ndarray]:
    """The model of `iteration`, once the cluster has moved past it (spec §3.5 getModel)."""
    while True:
        if devices.done():
            devices.result()  # a device failure ends the demo with its error
        answer = await client.get_model(iteration)
        if (not isinstance(answer, PlainText) and answer.retcode == ResponseCode.SUCCEED
                and answer.iteration > iteration):
            return downloaded_weights(answer)  # dequantised when the server sends QUANT
        await asyncio.sleep(POLL_S)


async def _server_line(metrics_path: Path, iteration: int, timeout_s: float = 5.0) -> dict[str, Any]:
    """The server's metrics.json line of `iteration` (written at the switch, so normally already there)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        for line in read_all(metrics_path):
            if line.get("currentIteration") == iteration:
                return line
        await asyncio.sleep(POLL_S)
    return {}
