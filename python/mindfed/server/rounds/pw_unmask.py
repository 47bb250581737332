"""/getClientList and /reconstructSecrets of PW_ENCRYPT (spec §7.1 steps 7 and 9): uploaders learn who uploaded,
then reveal, for every peer, the share of its seed b_u (uploaded) or of its mask key s_sk (dropped). With t + 1
reconstructors the aggregator can remove every mask (server/unmask.py).

Late callers (the iteration ended while they polled; mindspore-java-client-pw-facts.md, 7) are told SUCCEED when
their update is in that iteration's aggregate, so a device that did its part does not count the iteration as lost.
"""

from __future__ import annotations

from mindfed.cache.secagg import ALREADY, ENOUGH, NOT_MEMBER, NOT_READY, PwCache
from mindfed.errors import ProtocolError
from mindfed.protocol import tables
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.plain_text import TEXT_SAFEMODE
from mindfed.secagg.thresholds import GET_CLIENT_LIST
from mindfed.secagg.wire import RevealedShare
from mindfed.server.pki_check import table_refusal
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.secagg_context import PwRound
from mindfed.server.state import ServerState, now_ms

MAX_SHARE_BYTES = 33  # an element of the 264-bit field
REASON_RECONSTRUCT_ENOUGH = "Current amount for ReconstructSecretsKernel is enough."


def _list_reply(ctx: PwRound, code: ResponseCode, reason: str, clients: list[str] | None = None,
                iteration: int | None = None, next_req_time: str = "") -> RoundReply:
    return ctx.reply("ReturnClientList", code, reason, next_req_time=next_req_time, iteration=iteration,
                     clients=clients)


async def _uploaded_in(state: ServerState, iteration: int, fl_id: str) -> set[str] | None:
    """The uploaders of an earlier `iteration` if `fl_id` is one of them (its keys linger a minute after the end)."""
    if not 1 <= iteration < state.iteration:
        return None
    uploaded = await PwCache(state.store_iteration(iteration), state.ttl.iteration_s).uploaded()
    return uploaded if fl_id in uploaded else None


async def handle_get_client_list(state: ServerState, body: bytes | bytearray) -> RoundReply:
    ctx = PwRound.of(state)
    try:
        req = tables.decode("GetClientList", body)
    except ProtocolError:
        return _list_reply(ctx, ResponseCode.RequestError, "The schema of GetClientList is invalid.")
    refused = await table_refusal(state, req)
    if refused is not None:
        return _list_reply(ctx, *refused)
    fl_id = req["fl_id"]
    if req["iteration"] != ctx.iteration:
        late = await _uploaded_in(state, req["iteration"], fl_id)
        if late is not None:
            return _list_reply(ctx, ResponseCode.SUCCEED, "send clients_list succeed!", sorted(late),
                               iteration=req["iteration"])
        if req["iteration"] > ctx.iteration and await state.lagging():
            return RoundReply(TEXT_SAFEMODE)  # the device is ahead of this server, not late
        return _list_reply(ctx, ResponseCode.OutOfTime, "iter num is error.", next_req_time=ctx.later())
    t_u = state.config.round.update_model_threshold
    code, _ = await ctx.pw.join(GET_CLIENT_LIST, fl_id, "updateModel", t_u, ctx.pw.keys.update_model_clients,
                                ctx.th.get_client_list, now_ms())
    if code in (NOT_READY, ALREADY):
        return _list_reply(ctx, ResponseCode.SucNotReady, "The server is not ready.")
    if code == NOT_MEMBER:
        return _list_reply(ctx, ResponseCode.RequestError, f"fl_id: {fl_id} is not in the update_model_clients")
    return _list_reply(ctx, ResponseCode.SUCCEED, "send clients_list succeed!", sorted(await ctx.pw.uploaded()))


def _reconstruct_reply(ctx: PwRound, code: ResponseCode, reason: str, iteration: int | None = None,
                       next_req_time: str = "") -> RoundReply:
    return ctx.reply("ReconstructSecret", code, reason, next_req_time=next_req_time, iteration=iteration)


def _revealed(req: dict[str, object]) -> list[RevealedShare] | None:
    shares = req["reconstruct_secret_shares"]
    assert isinstance(shares, list)
    out = [RevealedShare(s["fl_id"], s["index"], s["share"]) for s in shares]
    if not out or any(not 1 <= s.index <= 0xFFFF or len(s.share) > MAX_SHARE_BYTES or not s.source for s in out):
        return None
    return out


async def handle_reconstruct_secrets(state: ServerState, body: bytes | bytearray) -> RoundReply:
    ctx = PwRound.of(state)
    try:
        req = tables.decode("SendReconstructSecret", body)
    except ProtocolError:
        return _reconstruct_reply(ctx, ResponseCode.RequestError, "The schema of SendReconstructSecret is invalid.")
    refused = await table_refusal(state, req)
    if refused is not None:
        return _reconstruct_reply(ctx, *refused)
    fl_id = req["fl_id"]
    if req["iteration"] != ctx.iteration:
        if await _uploaded_in(state, req["iteration"], fl_id) is not None:
            return _reconstruct_reply(ctx, ResponseCode.SUCCEED, "Clients' number is full.",
                                      iteration=req["iteration"])
        return _reconstruct_reply(ctx, ResponseCode.OutOfTime, "iter num is error.", next_req_time=ctx.later())
    shares = _revealed(req)
    if shares is None:
        return _reconstruct_reply(ctx, ResponseCode.RequestError, "reconstructSecrets: no share, or a share with "
                                  "an empty fl_id, an index outside 1..65535 or more than 33 bytes")
    threshold = ctx.th.reconstruct_secrets
    code, count, uploaded = await ctx.pw.reconstruct(fl_id, shares, threshold, now_ms())
    if code == ENOUGH:
        return _reconstruct_reply(ctx, ResponseCode.SUCCEED if uploaded else ResponseCode.OutOfTime,
                                  REASON_RECONSTRUCT_ENOUGH, next_req_time="" if uploaded else ctx.later())
    if code == NOT_MEMBER:
        if uploaded:
            return _reconstruct_reply(ctx, ResponseCode.SUCCEED, "The client is not in update model client list.")
        return _reconstruct_reply(ctx, ResponseCode.RequestError, "The client is not in update model client list.")
    if code == ALREADY:
        return _reconstruct_reply(ctx, ResponseCode.SUCCEED, "Client has sended messages.")
    if count >= threshold:
        if state.on_all_folded is not None:
            state.on_all_folded(ctx.iteration)  # the aggregator unmasks once every update is folded as well
        return _reconstruct_reply(ctx, ResponseCode.SUCCEED, "Success,the secret is reconstructing.")
    return _reconstruct_reply(ctx, ResponseCode.SUCCEED,
                              "Success, but the server is not ready to reconstruct secret yet.")
