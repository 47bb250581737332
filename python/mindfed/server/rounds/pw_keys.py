"""/exchangeKeys and /getKeys of PW_ENCRYPT (spec §7.1 steps 1–2): devices publish their public keys, then each
fetches everyone's once enough have published. MindSpore's check order and reason strings. The same two rounds are
all of STABLE_PW_ENCRYPT, with one key (s_pk) per worker."""

from __future__ import annotations

from mindfed.cache.secagg import ALREADY, ENOUGH, NOT_MEMBER, NOT_READY
from mindfed.errors import ProtocolError
from mindfed.pki import exchange_keys_data
from mindfed.protocol import tables
from mindfed.protocol.codes import ResponseCode
from mindfed.secagg.thresholds import EXCHANGE_KEYS, GET_KEYS
from mindfed.secagg.wire import IV_BYTES, PK_BYTES, DeviceKeys
from mindfed.server.pki_check import keep_key_signature, key_signatures, table_refusal
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.secagg_context import PwRound
from mindfed.server.stable_pw import is_stable_pw
from mindfed.server.state import ServerState, now_ms

REASON_KEYS_ENOUGH = "Current amount for exchangeKey is enough. Please retry later."  # sic, exchange_keys_kernel.cc


def _exchange_reply(ctx: PwRound, code: ResponseCode, reason: str, next_req_time: str) -> RoundReply:
    return ctx.reply("ResponseExchangeKeys", code, reason, next_req_time=next_req_time)


async def handle_exchange_keys(state: ServerState, body: bytes | bytearray) -> RoundReply:
    ctx = PwRound.of(state)
    threshold = ctx.th.exchange_keys
    stable = is_stable_pw(state.config)
    try:
        req = tables.decode("RequestExchangeKeys", body)
        # STABLE_PW_ENCRYPT workers send s_pk, pw_iv and pw_salt only (no shares to encrypt, no own seed): the
        # fixed-size record keeps zeros in the place of c_pk and ind_iv, never handed out (spec §7.1).
        keys: DeviceKeys | None = DeviceKeys(
            bytes(PK_BYTES) if stable else req["c_pk"], req["s_pk"], bytes(IV_BYTES) if stable else req["ind_iv"],
            req["pw_iv"], req["pw_salt"])
        problem = None
    except ProtocolError as exc:
        req, keys, problem = None, None, str(exc)
    if req is None or req["iteration"] != ctx.iteration or keys is None or not req["fl_id"]:
        # MindSpore counts first: a full round answers "enough" whatever the request holds
        code, _ = await ctx.pw.exchange_keys("", None, threshold, now_ms())
        if code == ENOUGH:
            return _exchange_reply(ctx, ResponseCode.OutOfTime, REASON_KEYS_ENOUGH, ctx.later())
        if req is None:
            return _exchange_reply(ctx, ResponseCode.RequestError, "The schema of RequestExchangeKeys is invalid.",
                                   ctx.now())
        if req["iteration"] != ctx.iteration:
            return _exchange_reply(ctx, ResponseCode.OutOfTime, "iter num is error.", ctx.later())
        return _exchange_reply(ctx, ResponseCode.RequestError, problem or "exchangeKeys: fl_id is empty", ctx.now())
    fl_id = req["fl_id"]
    refused = await table_refusal(state, req, exchange_keys_data(req["c_pk"], req["s_pk"], req["timestamp"],
                                                                 req["iteration"]))
    if refused is not None:  # pki_verify: c_pk ‖ s_pk ‖ timestamp ‖ iteration
        return _exchange_reply(ctx, refused[0], refused[1], ctx.now())
    code, _ = await ctx.pw.exchange_keys(fl_id, keys, threshold, now_ms())
    if code == ENOUGH:
        return _exchange_reply(ctx, ResponseCode.OutOfTime, REASON_KEYS_ENOUGH, ctx.later())
    if code == NOT_MEMBER:
        return _exchange_reply(ctx, ResponseCode.OutOfTime, f"devices_meta for {fl_id} is not set. Please retry "
                               "later.", ctx.later())
    if code == ALREADY:
        return _exchange_reply(ctx, ResponseCode.SUCCEED,
                               "The server has received the request, please do not request again.", ctx.now())
    await keep_key_signature(state, req)
    return _exchange_reply(ctx, ResponseCode.SUCCEED, "Success, but the server is not ready yet.", ctx.now())


def _keys_reply(ctx: PwRound, code: ResponseCode, remote: list[dict[str, object]] | None = None,
                next_req_time: str = "") -> RoundReply:
    return ctx.reply("ReturnExchangeKeys", code, next_req_time=next_req_time, remote_publickeys=remote)


async def handle_get_keys(state: ServerState, body: bytes | bytearray) -> RoundReply:
    ctx = PwRound.of(state)
    try:
        req = tables.decode("GetExchangeKeys", body)
    except ProtocolError:
        return _keys_reply(ctx, ResponseCode.RequestError)
    refused = await table_refusal(state, req)
    if refused is not None:
        return _keys_reply(ctx, refused[0])
    if req["iteration"] != ctx.iteration:
        return _keys_reply(ctx, ResponseCode.OutOfTime, next_req_time=ctx.later())
    code, _ = await ctx.pw.join(GET_KEYS, req["fl_id"], EXCHANGE_KEYS, ctx.th.exchange_keys, ctx.pw.keys.pw_keys,
                                ctx.th.get_keys, now_ms())
    if code == NOT_READY:
        return _keys_reply(ctx, ResponseCode.SucNotReady)
    if code == NOT_MEMBER:
        return _keys_reply(ctx, ResponseCode.RequestError)
    if code == ALREADY:
        return _keys_reply(ctx, ResponseCode.OutOfTime, next_req_time=ctx.later())
    everyone = await ctx.pw.all_keys()
    signed = await key_signatures(state)  # pki_verify: each key's signature and chain, for the peers to check
    # Sorted by fl_id, so every device sees one order (MindSpore: Redis HGETALL order).
    stable = is_stable_pw(state.config)  # STABLE_PW_ENCRYPT: no c_pk (spec §7.1)
    remote: list[dict[str, object]] = [
        {"fl_id": fl_id, **({} if stable else {"c_pk": k.c_pk}), "s_pk": k.s_pk, "pw_iv": k.pw_iv,
         "pw_salt": k.pw_salt, **signed.get(fl_id, {})}
        for fl_id, k in sorted(everyone.items())]
    return _keys_reply(ctx, ResponseCode.SUCCEED, remote)
