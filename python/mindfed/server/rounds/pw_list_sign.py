"""/pushListSign and /getListSign of PW_ENCRYPT under pki_verify (spec §7.2): between getClientList and
reconstructSecrets each uploader signs the client list it was given, and reads everyone's signatures, so a device
can tell whether the server showed all of them the same list. The server keeps the list signatures opaque; it
verifies only `req_signature` (pushListSign) and `signature` (getListSign) over timestamp ‖ str(iteration).
MindSpore's check order and reason strings (push_list_sign_kernel.cc, get_list_sign_kernel.cc).
"""

from __future__ import annotations

from mindfed.cache.pki import ALREADY, ENOUGH, NOT_MEMBER, NOT_READY, PkiCache
from mindfed.errors import ProtocolError
from mindfed.protocol import tables
from mindfed.protocol.codes import ResponseCode
from mindfed.server.pki_check import table_refusal
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.secagg_context import PwRound
from mindfed.server.state import ServerState, now_ms

MAX_LIST_SIGNATURE_BYTES = 1024  # an RSA-8192 signature
REASON_PUSH_ENOUGH = "Current amount for PushListSignKernel is enough."
REASON_PUSH_NOT_LISTED = "client send signature is not in get update model client list. && client is illegal"
REASON_PUSHED = "send update model client list signature success. "  # sic, trailing space


def _push_reply(ctx: PwRound, code: ResponseCode, reason: str) -> RoundReply:
    return ctx.reply("ResponseClientListSign", code, reason)


def _pki(state: ServerState) -> PkiCache:
    return PkiCache(state.cache(), state.ttl.iteration_s)


async def handle_push_list_sign(state: ServerState, body: bytes | bytearray) -> RoundReply:
    ctx = PwRound.of(state)
    try:
        req = tables.decode("SendClientListSign", body)
    except ProtocolError:
        return _push_reply(ctx, ResponseCode.RequestError, "The schema of PushClientListSign is invalid.")
    refused = await table_refusal(state, req, signature_field="req_signature")
    if refused is not None:
        return _push_reply(ctx, *refused)
    if req["iteration"] != ctx.iteration:
        return _push_reply(ctx, ResponseCode.OutOfTime, "push list sign iteration number is invalid")
    if len(req["signature"]) > MAX_LIST_SIGNATURE_BYTES:
        return _push_reply(ctx, ResponseCode.RequestError, "pushListSign: the list signature is oversized")
    code, _, uploaded = await _pki(state).push_list_sign(req["fl_id"], req["signature"], ctx.th.push_list_sign,
                                                          now_ms())
    pass_on = ResponseCode.SUCCEED if uploaded else ResponseCode.OutOfTime  # an uploader may go on regardless
    if code == ENOUGH:
        return _push_reply(ctx, pass_on, REASON_PUSH_ENOUGH)
    if code == NOT_MEMBER:
        return _push_reply(ctx, pass_on, REASON_PUSH_NOT_LISTED)
    if code == ALREADY:
        return _push_reply(ctx, ResponseCode.SUCCEED,
                           "The server has received the request, please do not request again.")
    return _push_reply(ctx, ResponseCode.SUCCEED, REASON_PUSHED)


def _get_reply(ctx: PwRound, code: ResponseCode, reason: str, signatures: dict[str, bytes] | None = None
               ) -> RoundReply:
    listed = [{"fl_id": fl_id, "signature": sig} for fl_id, sig in sorted(signatures.items())] if signatures else None
    return ctx.reply("ReturnAllClientListSign", code, reason, client_list_sign=listed)


async def handle_get_list_sign(state: ServerState, body: bytes | bytearray) -> RoundReply:
    ctx = PwRound.of(state)
    try:
        req = tables.decode("RequestAllClientListSign", body)
    except ProtocolError:
        return _get_reply(ctx, ResponseCode.RequestError, "The schema of RequestAllClientListSign is invalid.")
    refused = await table_refusal(state, req)
    if refused is not None:
        return _get_reply(ctx, *refused)
    if req["iteration"] != ctx.iteration:
        return _get_reply(ctx, ResponseCode.OutOfTime, "iter num is error.")
    pki = _pki(state)
    code, uploaded = await pki.get_list_sign(req["fl_id"], ctx.th.push_list_sign, ctx.th.get_list_sign, now_ms())
    if code == NOT_READY:
        return _get_reply(ctx, ResponseCode.SucNotReady, "The server is not ready.")
    if code == NOT_MEMBER:
        if uploaded:
            return _get_reply(ctx, ResponseCode.SUCCEED,
                              "client not send list signature, but in update model client list.",
                              await pki.list_signatures())
        return _get_reply(ctx, ResponseCode.OutOfTime, "client not send list signature, && client is illegal")
    return _get_reply(ctx, ResponseCode.SUCCEED, REASON_PUSHED, await pki.list_signatures())
