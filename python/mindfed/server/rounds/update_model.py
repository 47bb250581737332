"""/updateModel (spec §3.5): verify a device's upload and fold it into this server's accumulator.

The device is answered SUCCEED only after its update is folded: an acknowledged update is always in the sum.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from mindfed import _core
from mindfed.cache.iteration import ADMITTED, ALREADY_DONE, NO_DEVICE_META, NOT_IN_GET_SECRETS, THRESHOLD_REACHED
from mindfed.cache.signds import SignDSCache
from mindfed.config.enums import EncryptType, EvalType
from mindfed.config.schema_encrypt import PAIRWISE_TYPES
from mindfed.errors import ProtocolError
from mindfed.pki import round_data
from mindfed.protocol.codes import CompressType, ResponseCode
from mindfed.protocol.plain_text import TEXT_SAFEMODE, TEXT_VERIFY_UPDATE_MODEL, schema_invalid_text
from mindfed.protocol.requests import parse_request_update_model
from mindfed.protocol.response_builders import build_response_update_model
from mindfed.protocol.views import RequestUpdateModelView
from mindfed.secagg.thresholds import GET_KEYS, GET_SECRETS
from mindfed.server import stats as S
from mindfed.server.compressed_upload import CompressedContext, CompressedUpload
from mindfed.server.pki_check import signature_refusal
from mindfed.server.ring_upload import RingContext, RingUpload, ring_mode
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.signds_upload import SignDSContext, SignDSUpload, is_signds
from mindfed.server.state import ServerState, now_ms
from mindfed.summary.participation import ParticipationLevels

REASON_ENOUGH = "Current amount for updateModel is enough. Please retry later."
SWITCH_RETRY_MS = 1000  # a device late for an iteration that is switching: the next one opens within about this


def _reply(code: ResponseCode, reason: str, next_req_time: str = "") -> RoundReply:
    return RoundReply(build_response_update_model(retcode=int(code), reason=reason, next_req_time=next_req_time),
                      accepted=code == ResponseCode.SUCCEED)


def _fields_ok(req: RequestUpdateModelView) -> bool:
    """Step 2 of spec §3.5: required fields present and the scalar metrics finite."""
    if not (req.has_fl_id and req.has_timestamp):
        return False
    if req.upload_compress_type == int(CompressType.NO_COMPRESS):
        if not req.has_feature_map or not all(t.complete for t in req.feature_map):
            return False
    elif not req.has_compress_feature_map or not all(t.complete for t in req.compress_feature_map):
        return False
    if not (math.isfinite(req.upload_loss) and math.isfinite(req.upload_accuracy)):
        return False
    return all(np.isfinite(item.data).all() for item in req.unsupervised_eval_items)


Update = dict[str, np.ndarray] | CompressedUpload | SignDSUpload | RingUpload


def _verified_update(state: ServerState, req: RequestUpdateModelView, signds: SignDSContext | None = None
                     ) -> Update | str | None:
    """Step 7: names known, sizes equal, no duplicates, finite. Missing weights are allowed (partial uploads).

    A compressed upload is checked as spec §3.5 step 7 says (rate, name_vec, lengths, min/max) and decoded later,
    straight into the accumulator. An empty result (no aggregated tensor in it) is answered "Feature map is empty".
    In ring mode (mindfed-only) only secure compressed uploads are taken; a refusal comes with its reason (a str).
    """
    if ring_mode(state.config):  # a float or plain-compressed upload cannot be summed with the ring-masked ones
        return RingContext.of(state, state.iteration).verify(req)
    if signds is not None:  # SIGNDS with sign ≠ 0 (server/signds_upload.py); sign = 0 uploads plain weights
        return signds.verify(req)
    if req.upload_compress_type != int(CompressType.NO_COMPRESS):
        return CompressedContext.of(state, state.iteration).verify(req)
    sizes = state.models.latest.sizes
    if len(req.feature_map) > len(sizes):
        return None
    update: dict[str, np.ndarray] = {}
    for tensor in req.feature_map:
        if tensor.name not in sizes or tensor.name in update or tensor.data.size != sizes[tensor.name]:
            return None
        if not _core.agg.all_finite(tensor.data):
            return None
        update[tensor.name] = tensor.data
    aggregated = set(state.accumulator.sizes)
    return {name: data for name, data in update.items() if name in aggregated}


async def handle(state: ServerState, body: bytes | bytearray) -> RoundReply:
    try:
        req = parse_request_update_model(body)
    except ProtocolError:
        return _reply(ResponseCode.RequestError, schema_invalid_text("RequestUpdateModel"))
    if not _fields_ok(req):
        return _reply(ResponseCode.RequestError, TEXT_VERIFY_UPDATE_MODEL)
    if state.phase.completed is not None:  # let in by the gate during the switch (gate.py): no Redis here
        if req.iteration != state.phase.completed:
            return RoundReply(TEXT_SAFEMODE)
        return _reply(ResponseCode.OutOfTime, REASON_ENOUGH, str(now_ms() + SWITCH_RETRY_MS))
    cfg, cache, iteration = state.config, state.cache(), state.iteration
    later = str(state.next_req_time_ms())
    threshold = cfg.round.update_model_threshold
    iteration_ok = req.iteration == iteration
    signds = await SignDSContext.of(state, iteration) if iteration_ok and req.sign != 0 and is_signds(state) else None
    verified = _verified_update(state, req, signds) if iteration_ok else None
    refusal, update = (verified, None) if isinstance(verified, str) else (None, verified)
    # pki_verify (step 6): checked before anything is reserved, reported in MindSpore's order below
    unsigned = await signature_refusal(state, req.fl_id, round_data(req.timestamp, req.iteration),
                                       req.signature, req.timestamp) if iteration_ok else None
    reserve = bool(update) and unsigned is None
    copied = await _copy_to_peer(state, iteration, req.fl_id, body) if reserve else None  # its marker
    logged = None if not reserve or state.update_log == "off" else body if copied is None else copied
    # One Redis round trip gates and reserves; local findings are reported in MindSpore's order after its checks.
    code, _, meta = await cache.reserve_update(req.fl_id, state.node_id, threshold, now_ms(), reserve=reserve,
                                               body=logged, pw=cfg.encrypt.encrypt_train_type in PAIRWISE_TYPES,
                                               pw_round=_pw_round(cfg.encrypt.encrypt_train_type))
    if copied is not None and code != ADMITTED:  # refused: nobody will read the copy (after a Redis error, whose
        await _drop_copy(state, iteration, copied)  # reservation may have landed, the copy stays to the end)
    if (code in (THRESHOLD_REACHED, NO_DEVICE_META) or req.iteration > iteration) and await state.lagging():
        return RoundReply(TEXT_SAFEMODE)  # the device is ahead of this server, not late
    if code == THRESHOLD_REACHED:
        return _reply(ResponseCode.OutOfTime, REASON_ENOUGH, later)
    if code == NO_DEVICE_META or meta is None:
        return _reply(ResponseCode.OutOfTime, f"devices_meta for {req.fl_id} is not set. Please retry later.", later)
    if not iteration_ok:
        return _reply(ResponseCode.OutOfTime,
                      f"UpdateModel iteration number is invalid:{req.iteration}, current iteration:{iteration}, "
                      f"Retry later at time: {later}, fl id is {req.fl_id}", later)
    if unsigned is not None:
        return _reply(unsigned[0], unsigned[1], later)
    if update is None:
        return _reply(ResponseCode.RequestError, refusal or f"Verify model feature map failed, retry later at time: "
                                                            f"{later}")
    if not update:
        return _reply(ResponseCode.RequestError, f"Feature map is empty for fl id {req.fl_id}")
    if code == NOT_IN_GET_SECRETS:
        clients = "get_keys_clients" if _pw_round(cfg.encrypt.encrypt_train_type) == GET_KEYS else "get_secrets_clients"
        return _reply(ResponseCode.OutOfTime, f"fl_id: {req.fl_id} is not in {clients}. Please retry later.", later)
    if code == ALREADY_DONE:
        return _reply(ResponseCode.OutOfTime,
                      f"Updating metadata of UpdateModelClientList failed for fl id {req.fl_id}", later)
    # Logged with its reservation (durable), folded, counted, and only then acknowledged: an acknowledged update
    # survives this server (docs/cluster.md).
    if isinstance(update, CompressedUpload | SignDSUpload | RingUpload):
        await state.accumulator.add_decoded(update.aggregated, meta.data_size,
                                            functools.partial(update.decode_into, data_size=meta.data_size),
                                            tag=req.fl_id)
    else:
        await state.accumulator.add(update, meta.data_size, tag=req.fl_id)
    await _record(state, iteration, req, meta.data_size, meta.eval_data_size, now_ms() - meta.start_time_ms)
    if is_signds(state):  # b̂ of every SIGNDS update, before it counts as folded: the summary of r_est sees it
        await SignDSCache(state.store, state.instance, state.ttl).push_b_hat(iteration, req.signds_b_hat)
    folded = await state.folded_marks.mark(cache, state.node_id)
    if folded >= threshold and state.on_all_folded is not None:
        state.on_all_folded(iteration)
    return _reply(ResponseCode.SUCCEED, "success not ready", later)


async def _copy_to_peer(state: ServerState, iteration: int, fl_id: str, body: bytes | bytearray) -> bytes | None:
    """update_log replica: the marker naming the peer that now holds a copy of `body`, or None (log the body)."""
    if state.replicator is None:
        return None
    return await state.replicator.replicate(state.instance, iteration, fl_id, body)


async def _drop_copy(state: ServerState, iteration: int, copied: bytes) -> None:
    """The reservation was refused: the holder's copy (this one only, never an accepted upload's) is never read."""
    if state.replicator is not None:
        await state.replicator.release(state.instance, iteration, copied)


def _pw_round(encrypt: EncryptType) -> str:
    """The round a masking uploader must have passed: getSecrets (PW_ENCRYPT), getKeys (STABLE_PW_ENCRYPT)."""
    return GET_KEYS if encrypt == EncryptType.STABLE_PW_ENCRYPT else GET_SECRETS


@functools.lru_cache(maxsize=4)
def _levels(text: str) -> ParticipationLevels:
    return ParticipationLevels.parse(text)  # parsed once: an invalid value warns once, not per update


async def _record(state: ServerState, iteration: int, req: RequestUpdateModelView, data_size: int, eval_size: int,
                  cost_ms: int) -> None:
    """Summary sums for metrics.json (spec §9) and the unsupervised-eval window (spec §12)."""
    levels = _levels(state.config.summary.participation_time_level).classify(cost_ms)
    increments: dict[str, float] = {
        S.LOSS_SUM: float(req.upload_loss) * data_size, S.DATA_SIZE_SUM: data_size,
        S.ACCURACY_SUM: float(req.upload_accuracy) * eval_size, S.EVAL_SIZE_SUM: eval_size,
    }
    increments.update({name: int(hit) for name, hit in zip(S.LEVELS, levels, strict=True)})
    state.stats.add(state.instance, iteration, increments)  # written to Redis in batches by the tick loop
    unsup = state.config.unsupervised
    if unsup.eval_type != EvalType.NOT_EVAL and req.unsupervised_eval_items:
        vector = np.concatenate([item.data for item in req.unsupervised_eval_items]).astype(float).tolist()
        await state.store.push_unsupervised(state.instance, req.fl_id, vector, unsup.cluster_client_num,
                                            state.ttl.config_s)

