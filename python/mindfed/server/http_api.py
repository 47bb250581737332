"""The device-facing HTTP surface (spec §3.1): POST of raw FlatBuffers to `{prefix}{round}`, always answered 200 with
a FlatBuffer or a plain-text body, as MindSpore devices expect. Client bytes never produce a 5xx.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from mindfed.config.enums import EncryptType
from mindfed.errors import CacheError
from mindfed.protocol.plain_text import TEXT_INNER_ERROR, TEXT_SAFEMODE
from mindfed.runtime.probes import PROBE_PATHS
from mindfed.server import stats as S
from mindfed.server.admission import AdmissionGate
from mindfed.server.body import BodyError, read_body
from mindfed.server.metrics import ServerMetrics
from mindfed.server.read_pacing import ADMITTED_READ_BYTES, QUEUED_READ_BYTES, set_read_size
from mindfed.server.rounds import (
    get_model,
    push_metrics,
    pw_keys,
    pw_list_sign,
    pw_shares,
    pw_unmask,
    start_fl_job,
    update_model,
)
from mindfed.server.rounds.gate import READ_ONLY_ROUNDS, refusal
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.shared_body import SharedBody, SharedBodyResponse, sendfile_able
from mindfed.server.state import ServerState
from mindfed.server.stats_buffer import StatsBuffer
from mindfed.summary.data_rate import DataRateRecorder

logger = logging.getLogger(__name__)

RoundHandler = Callable[[ServerState, bytearray], Awaitable[RoundReply]]

ROUNDS: dict[str, RoundHandler] = {
    "startFLJob": start_fl_job.handle,
    "updateModel": update_model.handle,
    "getModel": get_model.handle_get_model,
    "getResult": get_model.handle_get_result,
    "pushMetrics": push_metrics.handle,
}
# PW_ENCRYPT's rounds (spec §7.1), served only under it, as MindSpore registers them.
PW_ROUNDS: dict[str, RoundHandler] = {
    "exchangeKeys": pw_keys.handle_exchange_keys,
    "getKeys": pw_keys.handle_get_keys,
    "shareSecrets": pw_shares.handle_share_secrets,
    "getSecrets": pw_shares.handle_get_secrets,
    "getClientList": pw_unmask.handle_get_client_list,
    "reconstructSecrets": pw_unmask.handle_reconstruct_secrets,
}
# STABLE_PW_ENCRYPT's (cross-silo workers): the key exchange alone, no secret sharing (spec §7.1).
STABLE_PW_ROUNDS: dict[str, RoundHandler] = {name: PW_ROUNDS[name] for name in ("exchangeKeys", "getKeys")}
# ... and with client_verify.pki_verify, the client-list signature rounds (spec §7.2).
PKI_PW_ROUNDS: dict[str, RoundHandler] = {
    "pushListSign": pw_list_sign.handle_push_list_sign,
    "getListSign": pw_list_sign.handle_get_list_sign,
}


def route_path(prefix: str, round_name: str) -> str:
    """MindSpore's rule: `prefix + round` when a prefix is set (no slash inserted), else `/round`."""
    return prefix + round_name if prefix else "/" + round_name


def make_app(state: ServerState, stats: StatsBuffer, rates: DataRateRecorder, max_body_bytes: int,
             body_timeout_s: float = 120.0, gate: AdmissionGate | None = None,
             metrics: ServerMetrics | None = None) -> web.Application:
    """The aiohttp application serving every round of `ROUNDS` (any HTTP method, as MindSpore). The rounds that work
    on Redis pass `gate` (default: `AdmissionGate()`) before their body is read; getModel and getResult need neither
    Redis nor a large body and never wait. With `metrics`, GET `metrics`, `healthz` and `readyz` are served beside
    the rounds (same prefix rule) and every answer is counted there too."""
    gate = gate or AdmissionGate()
    app = web.Application(client_max_size=max_body_bytes)
    prefix = state.config.client.http_url_prefix
    rounds = dict(ROUNDS)
    if state.config.encrypt.encrypt_train_type == EncryptType.PW_ENCRYPT:
        rounds.update(PW_ROUNDS)
        if state.config.client_verify.pki_verify:
            rounds.update(PKI_PW_ROUNDS)
    elif state.config.encrypt.encrypt_train_type == EncryptType.STABLE_PW_ENCRYPT:
        rounds.update(STABLE_PW_ROUNDS)
    for name, handler in rounds.items():
        app.router.add_route("*", route_path(prefix, name),
                             _endpoint(name, handler, state, stats, rates, max_body_bytes, body_timeout_s,
                                       None if name in READ_ONLY_ROUNDS else gate, metrics))
    if metrics is not None:  # --- operator probes (server/metrics.py)
        metrics.add_routes(app, {name: route_path(prefix, name) for name in PROBE_PATHS})
    return app


def _endpoint(name: str, handler: RoundHandler, state: ServerState, stats: StatsBuffer, rates: DataRateRecorder,
              max_body_bytes: int, body_timeout_s: float, gate: AdmissionGate | None,
              metrics: ServerMetrics | None = None) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        if gate is None:
            return await serve(request)
        async with gate.enter(min(request.content_length or 0, max_body_bytes)):
            set_read_size(request.transport, ADMITTED_READ_BYTES)  # small reads until admitted (read_pacing.py)
            try:
                return await serve(request)
            finally:
                set_read_size(request.transport, QUEUED_READ_BYTES)

    async def serve(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            body = await read_body(request, max_body_bytes, body_timeout_s)
        except BodyError as exc:
            if metrics is not None:
                metrics.bad_bodies.labels(name).inc()
            return web.Response(status=exc.status, text=json.dumps({"code": "1", "error_message": str(exc)}))
        except (ConnectionError, HttpProcessingError) as exc:
            # the client hung up or broke the chunked framing mid-body: nothing to answer, nothing to log loudly
            logger.debug("%s: request body incomplete: %s", name, exc)
            if metrics is not None:
                metrics.bad_bodies.labels(name).inc()
            return web.Response(status=400, text=json.dumps({"code": "1", "error_message": "incomplete body"}))
        instance, iteration = state.instance, state.iteration  # what the request arrived in, not what follows it
        reply = await _run(name, handler, state, body)
        out = reply.body.encode() if isinstance(reply.body, str) else reply.body
        stats.add(instance, iteration, S.visit(name, reply.accepted, len(body), len(out)))
        rates.record(name, len(body), len(out))
        if metrics is not None:
            metrics.observe(name, reply.accepted, len(body), out, time.perf_counter() - started)
        if isinstance(out, SharedBody):
            return SharedBodyResponse(out) if sendfile_able(request, out) else web.Response(body=out.view())
        return web.Response(body=out)

    return endpoint


async def _run(name: str, handler: RoundHandler, state: ServerState, body: bytearray) -> RoundReply:
    refused = refusal(state, name)
    if refused is not None:
        return RoundReply(refused)
    state.in_flight += 1
    try:
        return await handler(state, body)
    except CacheError as exc:
        logger.warning("it %d: %s answered safemode: %s", state.iteration, name, exc)
        state.cache_ok = False
        return RoundReply(TEXT_SAFEMODE)
    except Exception:
        logger.exception("it %d: %s failed on a request", state.iteration, name)
        return RoundReply(TEXT_INNER_ERROR)
    finally:
        state.in_flight -= 1
