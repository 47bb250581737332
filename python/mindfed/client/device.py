"""The device side of the MindSpore Federated HTTP protocol, for simulators and tests.

`DeviceClient` sends the same FlatBuffers a Java device sends (POST of raw bytes to
`{base_url}{url_prefix}/{round}`) and reads the answers, telling plain-text bodies
(safemode, finished, ...) from FlatBuffers by the Java rule. With several base URLs
every request goes to a random one, like Java `useElb`: one device's requests in an
iteration land on different servers. The retry policies a simulator needs (`join`,
`wait_result`) sit on top of the single-request methods.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import numpy as np

from mindfed.client.pki import DeviceIdentity
from mindfed.client.signds import SignDSUpdate
from mindfed.compression import CompressedTensor, dequantize_model, encode_upload, upload_diff
from mindfed.errors import NetworkError
from mindfed.protocol import tables
from mindfed.protocol.codes import CompressType, ResponseCode
from mindfed.protocol.plain_text import classify_plain_text
from mindfed.protocol.request_builders import (
    build_request_fl_job,
    build_request_get_model,
    build_request_get_result,
    build_request_update_model,
)
from mindfed.protocol.responses import (
    parse_response_fl_job,
    parse_response_get_model,
    parse_response_get_result,
    parse_response_update_model,
)
from mindfed.protocol.views import (
    FLPlanView,
    ResponseFLJobView,
    ResponseGetModelView,
    ResponseGetResultView,
    ResponseUpdateModelView,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

_RETRY_LATER = frozenset({"safemode", "not_ready", "inner_error"})


@dataclass(frozen=True, slots=True)
class PlainText:
    """A plain-text answer instead of a FlatBuffer (spec §3.3).

    Attributes:
        kind: "safemode", "not_ready", "finished", "inner_error", "verify_failed"
            or "empty_output" (see `classify_plain_text`).
        text: The body as sent.
    """

    kind: str
    text: str

    @property
    def finished(self) -> bool:
        """Whether the server says the job is disabled or finished: stop for good."""
        return self.kind == "finished"


StartFLJobResult = ResponseFLJobView | PlainText
UpdateModelResult = ResponseUpdateModelView | PlainText
GetResultResult = ResponseGetResultView | PlainText
GetModelResult = ResponseGetModelView | PlainText


@dataclass(frozen=True, slots=True)
class UploadCompression:
    """DIFF_SPARSE_QUANT as startFLJob announced it (spec §8.1): what the device needs to encode its upload.

    Attributes:
        rate: upload_sparse_rate of the startFLJob response (sent back unchanged).
        received: The weights the device received in startFLJob (w_old), in name_vec order.
        data_size: The device's data size n (uploads are `w_new·n − w_old·n`).
    """

    rate: float
    received: Mapping[str, np.ndarray]
    data_size: int

    @classmethod
    def announced(cls, job: ResponseFLJobView, received: Mapping[str, np.ndarray], data_size: int
                  ) -> UploadCompression | None:
        """The compression `job` asks for, or None for plain uploads."""
        if job.upload_compress_type != int(CompressType.DIFF_SPARSE_QUANT):
            return None
        return cls(job.upload_sparse_rate, received, data_size)

    def encode(self, weights_times_n: Mapping[str, np.ndarray], iteration: int) -> list[CompressedTensor]:
        """The compress_feature_map of an upload: the diffs of the received weights that were trained, masked
        with the iteration's seed and quantised, in name_vec order (the order of `received`)."""
        names = [name for name in self.received if name in weights_times_n]
        diffs = {name: upload_diff(np.reshape(weights_times_n[name], -1), np.reshape(self.received[name], -1),
                                   self.data_size) for name in names}
        return encode_upload(diffs, names, self.rate, iteration)


def downloaded_weights(view: ResponseFLJobView | ResponseGetModelView) -> dict[str, np.ndarray]:
    """name → flat float32 weights of a startFLJob or getModel response, owned (not views into the body):
    dequantised when the server sent QUANT (spec §8.2)."""
    if view.download_compress_type == int(CompressType.QUANT):
        return dequantize_model(CompressedTensor(t.name, t.data, t.min_val, t.max_val)
                                for t in view.compress_feature_map)
    return {t.name: np.array(t.data) for t in view.feature_map}


def now_ms() -> str:
    """Current wall-clock time as the protocol's decimal ms-since-epoch string."""
    return str(int(time.time() * 1000))


class DeviceClient:
    """One simulated device of a federated job.

    Args:
        base_url: "http://host:port" (or "https://..."), or several; each request picks one at random.
        fl_name: The job name sent in every request.
        fl_id: This device's id.
        session: The HTTP session to use; None makes one, closed by `close()`.
        url_prefix: Path prefix before the round name (e.g. "/mindfed").
        request_timeout_s: Limit of one HTTP exchange.
        poll_interval_s: Pause between polls of getResult and retries of startFLJob.
        rng: Source of the random server choice (seed it for reproducible tests).
        ssl_context: For https URLs, the context that verifies the servers, e.g.
            `mindfed.tls.client.client_context(ca_file)`; None: the system's trust store.
        identity: A pki_verify device's key and chain (client/pki.py): startFLJob and updateModel are signed;
            `fl_id` "" takes the certificate's hash.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        fl_name: str,
        fl_id: str,
        session: aiohttp.ClientSession | None = None,
        url_prefix: str = "",
        request_timeout_s: float = 60,
        poll_interval_s: float = 0.5,
        rng: random.Random | None = None,
        ssl_context: ssl.SSLContext | None = None,
        identity: DeviceIdentity | None = None,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("base_url: at least one server URL is required")
        self._urls = [u.rstrip("/") + url_prefix.rstrip("/") for u in urls]
        self.fl_name = fl_name
        self.identity = identity
        self.fl_id = fl_id or (identity.fl_id if identity is not None else "")
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self.poll_interval_s = poll_interval_s
        self._rng = rng or random.Random()
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self.plan: FLPlanView | None = None
        """The FLPlan of the last successful startFLJob (epochs, mini_batch, lr for training)."""

    async def __aenter__(self) -> DeviceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the HTTP session if this client made it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, round_name: str, body: bytes) -> bytes | PlainText:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = f"{self._rng.choice(self._urls)}/{round_name}"
        try:
            async with self._session.post(url, data=body, timeout=self._timeout, ssl=self._ssl) as rsp:
                payload = await rsp.read()
                status = rsp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NetworkError(f"POST {url} failed: {exc!r}") from exc
        if status != 200:
            raise NetworkError(f"POST {url} answered HTTP {status}")
        kind = classify_plain_text(payload)
        if kind is not None:
            return PlainText(kind, payload.decode("utf-8", errors="replace"))
        return payload

    async def _exchange(self, round_name: str, body: bytes, parse: Callable[[bytes], T]) -> T | PlainText:
        """POST `body` and parse the FlatBuffer answer with `parse`; plain-text answers come back as they are."""
        payload = await self._post(round_name, body)
        return payload if isinstance(payload, PlainText) else parse(payload)

    async def start_fl_job(self, iteration: int, data_size: int, eval_data_size: int = 0) -> StartFLJobResult:
        """Sends one startFLJob.

        Args:
            iteration: The last iteration this device knows.
            data_size: Number of local training samples.
            eval_data_size: Number of local evaluation samples.

        Returns:
            The parsed ResponseFLJob (any retcode) or the plain-text answer. On SUCCEED
            with an FLPlan, `self.plan` is updated.

        Raises:
            NetworkError: The HTTP exchange failed or was not HTTP 200.
            ProtocolError: The server's FlatBuffer is malformed.
        """
        stamp = now_ms()
        pki = self.identity.fl_job_fields(self.fl_id, stamp) if self.identity is not None else {}
        body = build_request_fl_job(self.fl_name, self.fl_id, iteration, data_size, stamp, (0, 2), eval_data_size,
                                    **pki)  # type: ignore[arg-type]
        payload = await self._post("startFLJob", body)
        if isinstance(payload, PlainText):
            return payload
        view = parse_response_fl_job(payload)
        if view.retcode == ResponseCode.SUCCEED and view.fl_plan is not None:
            self.plan = view.fl_plan
        return view

    async def update_model(
        self, iteration: int, weights_times_n: Mapping[str, np.ndarray], loss: float, accuracy: float,
        compression: UploadCompression | None = None,
    ) -> UpdateModelResult:
        """Uploads this device's weights, already multiplied by its data size (spec §4.4).

        Args:
            iteration: The iteration from the startFLJob response.
            weights_times_n: name → w · n (any shape; sent as float32).
            loss: Mean local training loss.
            accuracy: Local evaluation accuracy.
            compression: DIFF_SPARSE_QUANT as startFLJob announced it (`UploadCompression.announced`);
                None uploads the plain weights.

        Returns:
            The parsed ResponseUpdateModel or the plain-text answer.

        Raises:
            NetworkError: The HTTP exchange failed.
            ProtocolError: The server's FlatBuffer is malformed.
        """
        stamp = now_ms()
        signature = self.round_signature(stamp, iteration)
        if compression is None:
            body = build_request_update_model(
                self.fl_name, self.fl_id, iteration, list(weights_times_n.items()), stamp, loss, accuracy,
                signature=signature)
        else:
            encoded = compression.encode(weights_times_n, iteration)
            body = build_request_update_model(
                self.fl_name, self.fl_id, iteration, None, stamp, loss, accuracy, signature=signature,
                compress_feature_map=[(t.name, t.codes, t.min_val, t.max_val) for t in encoded],
                upload_compress_type=int(CompressType.DIFF_SPARSE_QUANT), upload_sparse_rate=compression.rate,
                name_vec=[t.name for t in encoded])
        return await self._exchange("updateModel", body, parse_response_update_model)

    async def update_model_secure(self, iteration: int, tensors: Sequence[tuple[str, np.ndarray, float, float]],
                                  rate: float, loss: float, accuracy: float) -> UpdateModelResult:
        """Uploads a secure compressed update (mindfed-only SECURE_SPARSE_QUANT, client/secure_upload.py).

        Args:
            iteration: The iteration from the startFLJob response.
            tensors: (name, masked words as int8 bytes, lo, hi) per tensor, in name_vec order.
            rate: upload_sparse_rate as announced.
            loss: Mean local training loss.
            accuracy: Local evaluation accuracy.

        Raises:
            NetworkError: The HTTP exchange failed.
            ProtocolError: The server's FlatBuffer is malformed.
        """
        stamp = now_ms()
        body = build_request_update_model(
            self.fl_name, self.fl_id, iteration, None, stamp, loss, accuracy,
            signature=self.round_signature(stamp, iteration), compress_feature_map=list(tensors),
            upload_compress_type=int(CompressType.SECURE_SPARSE_QUANT), upload_sparse_rate=rate,
            name_vec=[t[0] for t in tensors])
        return await self._exchange("updateModel", body, parse_response_update_model)

    async def update_model_signds(self, iteration: int, update: SignDSUpdate, loss: float, accuracy: float
                                  ) -> UpdateModelResult:
        """Uploads a SignDS update (spec §7.4): the tensor names with empty data, sign, index_array and b̂,
        as Java's signDSEncrypt; no weights leave the device.

        Args:
            iteration: The iteration from the startFLJob response.
            update: The device's `client.signds.sign_ds_update`.
            loss: Mean local training loss.
            accuracy: Local evaluation accuracy.

        Raises:
            NetworkError: The HTTP exchange failed.
            ProtocolError: The server's FlatBuffer is malformed.
        """
        empty = np.zeros(0, np.float32)
        stamp = now_ms()
        body = build_request_update_model(
            self.fl_name, self.fl_id, iteration, [(name, empty) for name in update.names], stamp, loss, accuracy,
            signature=self.round_signature(stamp, iteration), sign=update.sign, index_array=update.index_array,
            signds_b_hat=update.b_hat)
        return await self._exchange("updateModel", body, parse_response_update_model)

    def round_signature(self, timestamp: str, iteration: int) -> bytes | None:
        """pki_verify: the signature over timestamp ‖ iteration every round after startFLJob carries."""
        return self.identity.round_signature(timestamp, iteration) if self.identity is not None else None

    async def get_result(self, iteration: int) -> GetResultResult:
        """Asks once whether `iteration` has been aggregated.

        Raises:
            NetworkError: The HTTP exchange failed.
            ProtocolError: The server's FlatBuffer is malformed.
        """
        return await self._exchange("getResult", build_request_get_result(self.fl_name, iteration, now_ms()),
                                    parse_response_get_result)

    async def get_model(self, iteration: int) -> GetModelResult:
        """Fetches the model of `iteration` once (QUANT or plain, as the server chooses).

        Raises:
            NetworkError: The HTTP exchange failed.
            ProtocolError: The server's FlatBuffer is malformed.
        """
        return await self._exchange("getModel", build_request_get_model(self.fl_name, iteration, now_ms()),
                                    parse_response_get_model)

    async def exchange_table(self, round_name: str, request_table: str, values: Mapping[str, object],
                             response_table: str) -> dict[str, object] | PlainText:
        """POST a cipher.fbs request built from `values` and decode the answer (protocol/tables.py)."""
        body = tables.encode(request_table, values)
        return await self._exchange(round_name, body, lambda payload: tables.decode(response_table, payload))

    async def wait_result(self, iteration: int, deadline_s: float) -> GetResultResult:
        """Polls getResult every poll interval until the server answers SUCCEED.

        SucNotReady and the retry-later texts (safemode, not ready, inner error) are
        polled again; any other answer (finished, RequestError, ...) is returned.

        Args:
            iteration: The iteration whose aggregation to wait for.
            deadline_s: Give up after this many seconds.

        Returns:
            The SUCCEED response, or the first answer that is not worth polling again.

        Raises:
            TimeoutError: The deadline passed first.
            NetworkError: An HTTP exchange failed.
        """
        async with asyncio.timeout(deadline_s):
            while True:
                result = await self.get_result(iteration)
                if not _poll_again(result):
                    return result
                await asyncio.sleep(self.poll_interval_s)

    async def join(self, iteration: int, data_size: int, deadline_s: float, eval_data_size: int = 0
                   ) -> StartFLJobResult:
        """Calls startFLJob until this device is in an iteration, as a Java device does.

        Retry-later texts (safemode, ...) retry after the poll interval; OutOfTime sleeps
        until the response's next_req_time (never negative, never past the deadline,
        at least one poll interval so a stale time cannot spin) and retries.

        Args:
            iteration: The last iteration this device knows.
            data_size: Number of local training samples.
            deadline_s: Give up after this many seconds.

        Returns:
            The SUCCEED response, a PlainText with `finished` set (stop the device), or
            any other final answer (RequestError, SystemError, other texts).

        Raises:
            TimeoutError: The deadline passed first.
            NetworkError: An HTTP exchange failed.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        async with asyncio.timeout_at(end):
            while True:
                result = await self.start_fl_job(iteration, data_size, eval_data_size)
                if isinstance(result, PlainText):
                    if result.kind not in _RETRY_LATER:
                        return result
                    await asyncio.sleep(self.poll_interval_s)
                elif result.retcode == ResponseCode.OutOfTime:
                    logger.debug("%s: startFLJob out of time (%s)", self.fl_id, result.reason)
                    await asyncio.sleep(self._wait_until(result.next_req_time, end - loop.time()))
                else:
                    return result

    def _wait_until(self, next_req_time: str, remaining_s: float) -> float:
        try:
            wait_s = int(next_req_time) / 1000 - time.time()
        except ValueError:
            wait_s = 0.0  # RequestError-style answers often carry ""
        return max(self.poll_interval_s, min(wait_s, max(remaining_s, 0.0)))


def _poll_again(result: GetResultResult) -> bool:
    if isinstance(result, PlainText):
        return result.kind in _RETRY_LATER
    return result.retcode == ResponseCode.SucNotReady
