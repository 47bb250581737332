"""The rounds a CLOUD_TRAINING worker plays against its server (spec §11.2), with their retry rules.

startFLJob is retried until the worker is in an iteration (an iteration already full or switching sends it to the
next one); exchangeKeys/getKeys are the STABLE_PW_ENCRYPT key exchange; getModel is polled until the iteration's
model is served. A round the server ends for this worker (OutOfTime, RequestError) raises `WindowAborted`: the
caller gives up the window's upload and adopts the current global model, so a worker never wedges an iteration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import numpy as np

from mindfed.client.device import DeviceClient, PlainText, downloaded_weights, now_ms
from mindfed.errors import MindFedError
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.views import ResponseFLJobView
from mindfed.worker.stable_pw_masks import PeerKey, StableKeys

logger = logging.getLogger(__name__)
_RETRY_TEXTS = frozenset({"safemode", "not_ready", "inner_error"})


class TrainingFinished(MindFedError):
    """The server says the job is finished or disabled: there is nothing left to synchronise with."""


class WindowAborted(MindFedError):
    """The server ended this worker's part in the current iteration; `reason` is its answer."""


class CrossSiloRounds:
    """One worker's requests, each bounded by `deadline_s`.

    Args:
        client: the worker's device-protocol client (one server, `http_server_address`).
        deadline_s: the longest one round may take, retries included.
    """

    def __init__(self, client: DeviceClient, deadline_s: float) -> None:
        self.client = client
        self.deadline_s = deadline_s

    @property
    def fl_id(self) -> str:
        return self.client.fl_id

    async def join(self, data_size: int) -> ResponseFLJobView:
        """startFLJob until admitted to an iteration.

        Raises:
            TrainingFinished: the job is finished or disabled.
            WindowAborted: a final refusal (RequestError, a bad data size).
            TimeoutError: not admitted within the deadline.
        """
        result = await self.client.join(0, data_size, self.deadline_s)
        if isinstance(result, PlainText):
            if result.finished:
                raise TrainingFinished(result.text)
            raise WindowAborted(f"startFLJob: {result.text}")
        if result.retcode != ResponseCode.SUCCEED:
            raise WindowAborted(f"startFLJob: {result.reason}")
        return result

    async def exchange_keys(self, iteration: int) -> tuple[StableKeys, dict[str, PeerKey]]:
        """STABLE_PW_ENCRYPT: publish a fresh s_pk, then poll getKeys until every worker's key is there."""
        keys = StableKeys.fresh(self.fl_id)
        await self._table("exchangeKeys", "RequestExchangeKeys", {
            "fl_id": self.fl_id, "s_pk": keys.s_pk, "iteration": iteration, "timestamp": now_ms(),
            "pw_iv": keys.pw_iv, "pw_salt": keys.pw_salt}, "ResponseExchangeKeys", poll=False)
        listed = await self._table("getKeys", "GetExchangeKeys",
                                   {"fl_id": self.fl_id, "iteration": iteration, "timestamp": now_ms()},
                                   "ReturnExchangeKeys", poll=True)
        peers = {str(e["fl_id"]): PeerKey(e["s_pk"], e["pw_iv"], e["pw_salt"])
                 for e in listed["remote_publickeys"]}  # type: ignore[attr-defined]
        if self.fl_id not in peers:
            raise WindowAborted(f"getKeys: the key list of {len(peers)} workers lacks this worker")
        return keys, peers

    async def upload(self, iteration: int, upload: Mapping[str, np.ndarray], loss: float, accuracy: float) -> None:
        """updateModel; SUCCEED and OutOfTime are both final, as for MindSpore's worker (the iteration may have
        counted enough updates already): either way the worker goes on to getModel."""
        async with asyncio.timeout(self.deadline_s):
            while True:
                result = await self.client.update_model(iteration, upload, loss, accuracy)
                if not isinstance(result, PlainText):
                    break
                if result.finished:
                    raise TrainingFinished(result.text)
                if result.kind not in _RETRY_TEXTS:
                    raise WindowAborted(f"updateModel: {result.text}")
                await asyncio.sleep(self.client.poll_interval_s)
        if result.retcode == ResponseCode.RequestError:
            raise WindowAborted(f"updateModel: {result.reason}")
        if result.retcode != ResponseCode.SUCCEED:
            logger.warning("%s: updateModel of iteration %d not counted: %s", self.fl_id, iteration, result.reason)

    async def model_of(self, iteration: int) -> tuple[int, dict[str, np.ndarray]]:
        """The global model of `iteration` (getModel polled until served) and the server's current iteration."""
        async with asyncio.timeout(self.deadline_s):
            while True:
                result = await self.client.get_model(iteration)
                if isinstance(result, PlainText):
                    if result.finished:
                        raise TrainingFinished(result.text)
                elif result.retcode == ResponseCode.SUCCEED:
                    return result.iteration, downloaded_weights(result)
                elif result.retcode != ResponseCode.SucNotReady:
                    raise WindowAborted(f"getModel: {result.reason}")
                await asyncio.sleep(self.client.poll_interval_s)

    async def current_model(self) -> tuple[int, dict[str, np.ndarray]]:
        """The newest global model: ask once to learn the server's iteration c, then fetch the model of c − 1."""
        current, weights = await self.model_of(0)
        if current - 1 == 0:
            return current, weights
        return await self.model_of(current - 1)

    async def _table(self, round_name: str, request: str, values: dict[str, object], response: str,
                     poll: bool) -> dict[str, object]:
        async with asyncio.timeout(self.deadline_s):
            while True:
                answer = await self.client.exchange_table(round_name, request, values, response)
                if isinstance(answer, PlainText):
                    if answer.finished:
                        raise TrainingFinished(answer.text)
                    if answer.kind not in _RETRY_TEXTS:
                        raise WindowAborted(f"{round_name}: {answer.text}")
                elif answer["retcode"] == ResponseCode.SUCCEED:
                    return answer
                elif not (poll and answer["retcode"] == ResponseCode.SucNotReady):
                    raise WindowAborted(f"{round_name}: retcode {answer['retcode']} {answer.get('reason', '')}")
                await asyncio.sleep(self.client.poll_interval_s)
                values = {**values, "timestamp": now_ms()}
