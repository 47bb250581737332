"""Simulated devices: N MindSpore-protocol devices training LeNet locally (torch), against one or more servers.

Each device runs the Java client's loop (spec §3.6): startFLJob → local training with the FLPlan's epochs, batch size
and learning rate → updateModel (weights × data size) → poll getResult → next iteration, until the server says the job
is finished. Devices run concurrently on one event loop; training runs on a small thread pool (torch releases the GIL),
one torch thread per worker so N devices share the cores instead of oversubscribing them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import aiohttp
import torch

from mindfed.client.device import DeviceClient, PlainText, UpdateModelResult, UploadCompression, downloaded_weights
from mindfed.client.secagg import PwAborted, PwSession
from mindfed.client.signds import sign_ds_update
from mindfed.client.trainer import train_local
from mindfed.client.upload_privacy import UploadPrivacy
from mindfed.data.device_data import DeviceData
from mindfed.protocol.codes import ResponseCode

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """One step a device finished, for progress displays."""

    fl_id: str
    iteration: int
    what: str  # "joined", "trained", "uploaded", "result", "refused", "finished"
    detail: str = ""


@dataclass(slots=True)
class SimulationReport:
    """What the devices did, counted per kind of event."""

    uploads: int = 0
    refusals: int = 0
    finished_devices: int = 0
    errors: list[str] = field(default_factory=list)


class Simulator:
    """Runs `devices` against `server_urls` until the job finishes (or `deadline_s` passes).

    Args:
        server_urls: base URLs of the servers (`http://ip:port`); each request picks one at random, like Java's useElb.
        fl_name: the job name (`fl_name` of the YAML).
        devices: each device's local training data.
        num_class: classes of the LeNet being trained.
        url_prefix: the YAML's `client.http_url_prefix`.
        train_workers: concurrent training threads (default: the number of cores, at most 2 on the demo machine).
        poll_interval_s: how often devices poll getResult and retry after safemode.
        on_event: called on the event loop for every `DeviceEvent`.
        ssl_context: for `https://` URLs, the context verifying the servers (`mindfed.tls.client.client_context`).
    """

    def __init__(self, server_urls: Sequence[str], fl_name: str, devices: Sequence[DeviceData], num_class: int,
                 url_prefix: str = "", train_workers: int = 2, poll_interval_s: float = 0.2,
                 deadline_s: float = 3600.0, seed: int = 0,
                 on_event: Callable[[DeviceEvent], None] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._urls = list(server_urls)
        self._fl_name = fl_name
        self._devices = list(devices)
        self._num_class = num_class
        self._prefix = url_prefix
        self._workers = train_workers
        self._poll_s = poll_interval_s
        self._deadline_s = deadline_s
        self._seed = seed
        self._on_event = on_event or (lambda _e: None)
        self._ssl = ssl_context
        self.report = SimulationReport()

    async def run(self) -> SimulationReport:
        torch.set_num_threads(1)
        connector = aiohttp.TCPConnector(limit=max(8, 2 * len(self._devices)))
        with ThreadPoolExecutor(self._workers, thread_name_prefix="device-train") as pool:
            async with (aiohttp.ClientSession(connector=connector) as session, asyncio.timeout(self._deadline_s),
                        asyncio.TaskGroup() as group):
                for index, data in enumerate(self._devices):
                    client = DeviceClient(self._urls, self._fl_name, f"device_{index:04d}", session=session,
                                          url_prefix=self._prefix, poll_interval_s=self._poll_s,
                                          ssl_context=self._ssl)
                    group.create_task(self._device_loop(client, data, pool, index), name=f"device-{index}")
        return self.report

    def _emit(self, event: DeviceEvent) -> None:
        self._on_event(event)

    def _refused(self, fl_id: str, iteration: int, reason: str) -> None:
        self.report.refusals += 1
        self._emit(DeviceEvent(fl_id, iteration, "refused", reason))

    async def _device_loop(self, client: DeviceClient, data: DeviceData, pool: ThreadPoolExecutor,
                           index: int) -> None:
        loop = asyncio.get_running_loop()
        iteration = 0
        privacy = UploadPrivacy()  # the cipher's encrypt_type; raises on a mode this SDK cannot apply
        while True:
            # eval_data_size: the accuracy a device reports is measured on its own training samples
            job = await client.join(iteration, data.num_samples, self._deadline_s, data.num_samples)
            if isinstance(job, PlainText):
                if job.finished:
                    self.report.finished_devices += 1
                    self._emit(DeviceEvent(client.fl_id, iteration, "finished"))
                    return
                raise RuntimeError(f"{client.fl_id}: startFLJob answered {job.text!r}")
            if job.retcode != ResponseCode.SUCCEED:
                raise RuntimeError(f"{client.fl_id}: startFLJob failed: {job.retcode} {job.reason}")
            iteration = job.iteration
            plan = job.fl_plan
            assert plan is not None, "a successful startFLJob carries the FLPlan"
            self._emit(DeviceEvent(client.fl_id, iteration, "joined"))
            pw = None
            if plan.cipher is not None and plan.cipher.encrypt_type == "PW_ENCRYPT":
                pw = PwSession(client, iteration, plan.cipher.pw_t, plan.cipher.pw_prime)
                try:
                    await pw.share(self._deadline_s)
                except PwAborted as exc:
                    self._refused(client.fl_id, iteration, str(exc))
                    continue
            weights = downloaded_weights(job)  # owned (the body is reused); dequantised if QUANT
            result = await loop.run_in_executor(pool, train_local, weights, data, plan.epochs, plan.mini_batch,
                                                plan.lr, self._seed * 100_003 + index * 1009 + iteration,
                                                self._num_class)
            self._emit(DeviceEvent(client.fl_id, iteration, "trained", f"loss {result.loss:.4f}"))
            answer: UpdateModelResult
            if plan.encrypt_type == "SIGNDS" and plan.cipher is not None:  # spec §7.4: no weights are uploaded
                update = sign_ds_update(weights, result.weights, list(weights), plan.cipher)
                answer = await client.update_model_signds(iteration, update, result.loss, result.accuracy)
            elif (secure := privacy.secure_compressed(job, weights, result.weights, data.num_samples, pw)) is not None:
                answer = await client.update_model_secure(iteration, secure.tensors, secure.rate, result.loss,
                                                          result.accuracy)
            else:
                upload = privacy.protect(job, weights, result.weights, data.num_samples, pw)
                compression = UploadCompression.announced(job, weights, data.num_samples)
                answer = await client.update_model(iteration, upload, result.loss, result.accuracy, compression)
            if isinstance(answer, PlainText) or answer.retcode != ResponseCode.SUCCEED:
                self.report.refusals += 1
                reason = answer.text if isinstance(answer, PlainText) else answer.reason
                self._emit(DeviceEvent(client.fl_id, iteration, "refused", reason))
                continue
            self.report.uploads += 1
            self._emit(DeviceEvent(client.fl_id, iteration, "uploaded"))
            if pw is not None:
                try:
                    await pw.reveal(self._deadline_s)
                except PwAborted as exc:
                    self._refused(client.fl_id, iteration, str(exc))
                    continue
            await client.wait_result(iteration, self._deadline_s)
            self._emit(DeviceEvent(client.fl_id, iteration, "result"))
            await privacy.after_iteration(client, job, weights, self._deadline_s)  # DP: adapt the clip
