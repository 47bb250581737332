"""/shareSecrets and /getSecrets of PW_ENCRYPT (spec §7.1 steps 3–4): each device leaves one encrypted share of
its secrets for every peer, then collects the shares left for it. The server never sees a share in the clear."""

from __future__ import annotations

from mindfed.cache.secagg import ALREADY, BAD_ADDRESSEE, ENOUGH, NOT_MEMBER, NOT_READY
from mindfed.errors import ProtocolError
from mindfed.protocol import tables
from mindfed.protocol.codes import ResponseCode
from mindfed.secagg.thresholds import GET_SECRETS, SHARE_SECRETS
from mindfed.secagg.wire import pack_inbox_entry
from mindfed.server.pki_check import table_refusal
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.secagg_context import PwRound
from mindfed.server.state import ServerState, now_ms

REASON_SHARES_ENOUGH = "Current amount for ShareSecretsKernel is enough."
MAX_CIPHERTEXT_BYTES = 512  # a share plaintext is at most 4 + 4·255 bytes; 2 × 33 + a few in practice


def _share_reply(ctx: PwRound, code: ResponseCode, reason: str, next_req_time: str) -> RoundReply:
    return ctx.reply("ResponseShareSecrets", code, reason, next_req_time=next_req_time)


async def handle_share_secrets(state: ServerState, body: bytes | bytearray) -> RoundReply:
    ctx = PwRound.of(state)
    threshold = ctx.th.share_secrets
    try:
        req = tables.decode("RequestShareSecrets", body)
    except ProtocolError:
        req = None
    shares = None
    if req is not None and req["iteration"] == ctx.iteration:
        shares = [(s["fl_id"], pack_inbox_entry(s["index"], s["share"])) for s in req["encrypted_shares"]]
        if not shares or any(len(s["share"]) > MAX_CIPHERTEXT_BYTES for s in req["encrypted_shares"]):
            shares = None
    if shares is None:  # the count comes first in MindSpore's order, whatever the request holds
        code, _ = await ctx.pw.share_secrets("", None, threshold, now_ms())
        if code == ENOUGH:
            return _share_reply(ctx, ResponseCode.OutOfTime, REASON_SHARES_ENOUGH, ctx.later())
        if req is None:
            return _share_reply(ctx, ResponseCode.RequestError, "The schema of RequestShareSecrets is invalid.",
                                ctx.now())
        if req["iteration"] != ctx.iteration:
            return _share_reply(ctx, ResponseCode.OutOfTime, "ShareSecretsKernel iteration invalid", ctx.later())
        return _share_reply(ctx, ResponseCode.RequestError,
                            "shareSecrets: encrypted_shares is empty or a share is oversized", ctx.now())
    fl_id = req["fl_id"]  # type: ignore[index]
    refused = await table_refusal(state, req)  # type: ignore[arg-type]
    if refused is not None:
        return _share_reply(ctx, refused[0], refused[1], ctx.now())
    code, _ = await ctx.pw.share_secrets(fl_id, shares, threshold, now_ms())
    if code == ENOUGH:
        return _share_reply(ctx, ResponseCode.OutOfTime, REASON_SHARES_ENOUGH, ctx.later())
    if code == NOT_MEMBER:
        return _share_reply(ctx, ResponseCode.RequestError,
                            "client share secret is not in getkeys list. && client is illegal", ctx.now())
    if code == ALREADY:
        return _share_reply(ctx, ResponseCode.SUCCEED, "client sharesecret already exists.", ctx.now())
    if code == BAD_ADDRESSEE:
        return _share_reply(ctx, ResponseCode.RequestError,
                            "shareSecrets: a share is addressed to itself, twice, or to a device without keys",
                            ctx.now())
    return _share_reply(ctx, ResponseCode.SUCCEED, "OK", ctx.now())


def _secrets_reply(ctx: PwRound, code: ResponseCode, shares: list[dict[str, object]] | None = None,
                   next_req_time: str = "") -> RoundReply:
    return ctx.reply("ReturnShareSecrets", code, next_req_time=next_req_time, encrypted_shares=shares)


async def handle_get_secrets(state: ServerState, body: bytes | bytearray) -> RoundReply:
    ctx = PwRound.of(state)
    try:
        req = tables.decode("GetShareSecrets", body)
    except ProtocolError:
        return _secrets_reply(ctx, ResponseCode.RequestError)
    refused = await table_refusal(state, req)
    if refused is not None:
        return _secrets_reply(ctx, refused[0])
    if req["iteration"] != ctx.iteration:
        return _secrets_reply(ctx, ResponseCode.OutOfTime, next_req_time=ctx.later())
    fl_id = req["fl_id"]
    code, _ = await ctx.pw.join(GET_SECRETS, fl_id, SHARE_SECRETS, ctx.th.share_secrets,
                                ctx.pw.keys.pw_clients(SHARE_SECRETS), ctx.th.get_secrets, now_ms())
    if code in (NOT_READY, ALREADY):
        return _secrets_reply(ctx, ResponseCode.SucNotReady)
    if code == NOT_MEMBER:
        return _secrets_reply(ctx, ResponseCode.RequestError)
    inbox = await ctx.pw.inbox(fl_id)
    return _secrets_reply(ctx, ResponseCode.SUCCEED,
                          [{"fl_id": source, "share": ct, "index": index} for source, index, ct in inbox])
