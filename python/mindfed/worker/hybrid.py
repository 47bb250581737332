"""The hybrid worker's side of spec §11.1: pullWeight, pushWeight and pushMetrics with MindSpore's retry rules.

pullWeight is asked every 500 ms until the devices' aggregate of the worker's iteration is ready, adopting the
server's iteration from its SucNotReady answers (a worker started late, or restarted, catches up) and starting again
at 1 when the scheduler starts a new instance. A non-finite aggregate is replaced by the worker's initial model, as
MindSpore's worker does. pushWeight is asked every 200 ms while the server is not ready for it; a push that comes too
late (the iteration ended without it, e.g. at its global timer) is dropped, and the next window pulls the next
iteration. pushMetrics ends the iteration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mindfed.cache.store import FINISHED, CacheStore
from mindfed.errors import MindFedError, ProtocolError
from mindfed.net.endpoint import TcpEndpoint
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.hybrid import (
    PULL_WEIGHT,
    PUSH_METRICS,
    PUSH_WEIGHT,
    build_request_pull_weight,
    build_request_push_weight,
    parse_response_pull_weight,
    parse_response_push_weight,
)
from mindfed.protocol.request_builders import build_request_push_metrics
from mindfed.protocol.responses import parse_response_push_metrics
from mindfed.worker.membership import WorkerMembership
from mindfed.worker.server_link import JobNotAvailable, ServerLink

logger = logging.getLogger(__name__)

PULL_RETRY_S = 0.5  # MindSpore: kRetryDurationOfPullWeights
PUSH_RETRY_S = 0.2  # MindSpore: kRetryDurationOfPushWeights
REFUSAL_WAIT_S = 3600.0  # how long a request waits out safemode or a disabled job before giving up


class WorkerRequestError(MindFedError):
    """A server refused the worker's request for a reason waiting cannot fix (e.g. a weight it does not know)."""


class JobFinished(MindFedError):  # noqa: N818 - a state, not a failure
    """The job has finished: there is nothing more to pull."""


@dataclass(frozen=True, slots=True)
class Pushed:
    """What a pushWeight achieved: `accepted` (it is, or another worker's push is, the iteration's model) and why."""

    iteration: int
    accepted: bool
    reason: str


class HybridWorker:
    """pullWeight / pushWeight / pushMetrics of one worker, over `ServerLink`.

    Args:
        endpoint: the worker's node endpoint.
        store: the job's store.
        membership: the worker's registration (it tells the instance and whether the job finished).
        initial_model: name -> float32 array, the fallback for a non-finite aggregate.
    """

    def __init__(self, endpoint: TcpEndpoint, store: CacheStore, membership: WorkerMembership,
                 initial_model: Mapping[str, np.ndarray]) -> None:
        self._link = ServerLink(endpoint, store)
        self._membership = membership
        self._initial = {name: np.array(value, np.float32, copy=True) for name, value in initial_model.items()}
        self.iteration = 0  # the iteration of the last successful pull
        self._instance = membership.instance

    @property
    def server(self) -> str | None:
        """The tcp address of the server in use."""
        return self._link.server

    def _instance_now(self) -> str:
        instance = self._membership.instance
        if instance is None:
            raise JobFinished("the job has no instance")
        if instance != self._instance:
            logger.info("new instance %s: iterations start again at 1", instance)
            self._instance, self.iteration = instance, 0
        return instance

    async def _finished(self) -> bool:
        status = await self._membership.refresh()
        return status is not None and status.running_state == FINISHED

    async def _request(self, frame_type: int, payload: bytes) -> bytes:
        """One answer from a live server; a disabled job is waited out, a finished one raises JobFinished."""
        while True:
            try:
                return await self._link.request(self._instance_now(), frame_type, payload, REFUSAL_WAIT_S)
            except JobNotAvailable:
                if await self._finished():
                    raise JobFinished("the job has finished") from None
                await asyncio.sleep(PULL_RETRY_S)

    async def pull(self, names: list[str]) -> dict[str, np.ndarray]:
        """The aggregate of the next iteration (name -> float32 array), waiting until the devices have made it.

        Raises:
            JobFinished: the job finished while waiting.
            WorkerRequestError: the server does not know a name.
            NoServerError: no server answered for `REFUSAL_WAIT_S`.
        """
        asked_in, want = None, self.iteration + 1
        while True:
            instance = self._instance_now()
            if instance != asked_in:  # first ask, or a new instance (iterations start again at 1)
                asked_in, want = instance, self.iteration + 1
            reply = await self._request(PULL_WEIGHT, build_request_pull_weight(want, names))
            rsp = parse_response_pull_weight(reply)
            if rsp.retcode == ResponseCode.SUCCEED:
                self.iteration = want
                weights = {t.name: np.array(t.data, np.float32, copy=True) for t in rsp.feature_map}
                if not all(np.isfinite(w).all() for w in weights.values()):
                    logger.warning("it %d: the aggregate is not finite; training from the initial model", want)
                    weights = {n: self._initial[n].copy() for n in weights if n in self._initial}
                logger.info("it %d: pulled %d weights from %s", want, len(weights), self.server)
                return weights
            if rsp.retcode != ResponseCode.SucNotReady:
                raise WorkerRequestError(f"pullWeight of iteration {want} refused ({rsp.retcode}): {rsp.reason}")
            if rsp.iteration > want:  # the cluster is further on: adopt its iteration (MindSpore's rule)
                logger.info("adopting the server's iteration %d (asked for %d)", rsp.iteration, want)
                want = rsp.iteration
            elif await self._finished():
                raise JobFinished(f"the job finished at iteration {rsp.iteration}")
            await asyncio.sleep(PULL_RETRY_S)

    async def push(self, weights: Mapping[str, np.ndarray]) -> Pushed:
        """Offer `weights` as the model of the iteration last pulled.

        Raises:
            WorkerRequestError: the server refused them (unknown name, wrong size, not finite).
        """
        iteration = self.iteration
        body = build_request_push_weight(iteration, list(weights.items()))
        while True:
            reply = await self._request(PUSH_WEIGHT, body)
            rsp = parse_response_push_weight(reply)
            if rsp.retcode == ResponseCode.SUCCEED:
                logger.info("it %d: %s", iteration, rsp.reason)
                return Pushed(iteration, True, rsp.reason)
            if rsp.retcode == ResponseCode.OutOfTime:
                logger.warning("it %d: push too late, the cluster is at iteration %d: %s", iteration, rsp.iteration,
                               rsp.reason)
                return Pushed(iteration, False, rsp.reason)
            if rsp.retcode != ResponseCode.SucNotReady:
                raise WorkerRequestError(f"pushWeight of iteration {iteration} refused ({rsp.retcode}): "
                                         f"{rsp.reason}")
            await asyncio.sleep(PUSH_RETRY_S)

    async def push_metrics(self, loss: float, accuracy: float) -> bool:
        """pushMetrics: ends the iteration last pushed; False when the server refused it (no push of its iteration).

        Raises:
            JobFinished: the job has finished (the push was the last iteration's and ended it already).
        """
        reply = await self._request(PUSH_METRICS, build_request_push_metrics(loss, accuracy))
        try:
            code = parse_response_push_metrics(reply)
        except ProtocolError as exc:
            raise WorkerRequestError(f"pushMetrics: unreadable answer: {exc}") from exc
        if code != ResponseCode.SUCCEED:
            logger.warning("it %d: pushMetrics refused (%d)", self.iteration, code)
        return code == ResponseCode.SUCCEED
