"""pki_verify on the server (spec §10.2, §3.5): the startFLJob chain check and the signature check of every later
round, with MindSpore's reasons and codes, plus replay protection (beyond MindSpore): a signature is accepted once.

    startFLJob     fl_id = SHA-256(equip_cert) → chain → CRL → signature → timestamp → unused signature
                   any failure: RequestError "startFLJob sign and certificate verify failed."
    later rounds   signature present → key attestation stored → signature → timestamp → unused signature
                   no signature, a bad one: RequestError "verify signature failed."
                   no key attestation, timestamp outside the window, a replay: OutOfTime
                   "verify signature timestamp failed or cannot find its key attestation."
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mindfed.cache.pki import PkiCache
from mindfed.config import FLConfig
from mindfed.pki import (
    ChainError,
    TrustAnchors,
    fl_id_of,
    round_data,
    start_fl_job_data,
    timestamp_in_window,
    verify_chain,
    verify_pss,
)
from mindfed.protocol.codes import ResponseCode
from mindfed.protocol.views import RequestFLJobView
from mindfed.server.state import ServerState, now_ms

logger = logging.getLogger(__name__)

REASON_FL_JOB = "startFLJob sign and certificate verify failed."
REASON_STORE_ATTESTATION = "startFLJob: store key attestation failed"
REASON_SIGNATURE = "verify signature failed."
REASON_TIMEOUT = "verify signature timestamp failed or cannot find its key attestation."
Refusal = tuple[ResponseCode, str]


def load_device_pki(cfg: FLConfig) -> TrustAnchors | None:
    """The trust anchors when pki_verify is on, else None.

    Raises:
        ConfigError: a root CA file is missing or unreadable, or the CRL file is unreadable.
    """
    v = cfg.client_verify
    if not v.pki_verify:
        return None
    return TrustAnchors.load(v.root_first_ca_path, v.root_second_ca_path, v.equip_crl_path)


def _pki(state: ServerState, iteration: int | None = None) -> PkiCache:
    return PkiCache(state.store_iteration(state.iteration if iteration is None else iteration), state.ttl.iteration_s)


async def _fresh(state: ServerState, signature: bytes, timestamp: str) -> bool:
    """The timestamp is inside replay_attack_time_diff and the signature was never accepted before."""
    window, now = state.config.client_verify.replay_attack_time_diff, now_ms()
    if not timestamp_in_window(timestamp, now, window):
        return False
    return await _pki(state).first_use(signature, int(timestamp), now, window)


def _chain_problem(anchors: TrustAnchors, req: RequestFLJobView) -> str | None:
    if req.fl_id != fl_id_of(req.equip_cert):
        return "fl_id is not the SHA-256 of equip_cert"
    try:
        verify_chain(anchors, req.key_attestation, req.equip_cert, req.equip_ca_cert)
    except ChainError as exc:
        return str(exc)
    if not verify_pss(req.key_attestation, start_fl_job_data(req.fl_id, req.timestamp), req.sign_data):
        return "sign_data does not verify with the key attestation"
    return None


def fl_job_fields_missing(state: ServerState, req: RequestFLJobView) -> bool:
    """Step 2 of startFLJob under pki_verify: the four pki fields must be present."""
    return state.pki is not None and not (req.has_key_attestation and req.has_equip_cert and req.has_equip_ca_cert
                                          and req.has_sign_data)


async def start_fl_job_refusal(state: ServerState, req: RequestFLJobView) -> Refusal | None:
    """Step 4 of startFLJob: None when pki_verify is off or the device passes (its key attestation then stored)."""
    anchors = state.pki
    if anchors is None:
        return None
    problem = _chain_problem(anchors, req)
    if problem is None and not await _fresh(state, req.sign_data, req.timestamp):
        problem = "timestamp outside replay_attack_time_diff, or a replayed sign_data"
    if problem is not None:
        logger.debug("it %d: startFLJob of %s refused: %s", state.iteration, req.fl_id, problem)
        return ResponseCode.RequestError, REASON_FL_JOB
    if not await _pki(state).store_key_attestation(req.fl_id, req.key_attestation):
        return ResponseCode.OutOfTime, REASON_STORE_ATTESTATION
    return None


async def signature_refusal(state: ServerState, fl_id: str, data: bytes, signature: bytes,
                            timestamp: str, iteration: int | None = None) -> Refusal | None:
    """MindSpore's VerifySignatureBase for the rounds after startFLJob: None when pki_verify is off or the
    signature of `data` verifies with fl_id's stored key attestation, in the window and unused.

    `iteration` is the one the request names: a late caller of an earlier iteration (still kept) is checked
    against the attestation it stored then; any other iteration against the current one's."""
    if state.pki is None:
        return None
    if not signature:
        return ResponseCode.RequestError, REASON_SIGNATURE
    if iteration is None or not 1 <= iteration <= state.iteration:
        iteration = state.iteration
    attestation = await _pki(state, iteration).key_attestation(fl_id)
    if attestation is None:
        return ResponseCode.OutOfTime, REASON_TIMEOUT
    if not verify_pss(attestation, data, signature):
        return ResponseCode.RequestError, REASON_SIGNATURE
    if not await _fresh(state, signature, timestamp):
        return ResponseCode.OutOfTime, REASON_TIMEOUT
    return None


async def table_refusal(state: ServerState, req: Mapping[str, Any], data: bytes | None = None,
                        signature_field: str = "signature") -> Refusal | None:
    """`signature_refusal` for a decoded cipher.fbs request; `data` defaults to timestamp ‖ str(iteration)."""
    if state.pki is None:
        return None
    signed = round_data(req["timestamp"], req["iteration"]) if data is None else data
    return await signature_refusal(state, req["fl_id"], signed, req[signature_field], req["timestamp"],
                                   req["iteration"])


async def keep_key_signature(state: ServerState, req: Mapping[str, Any]) -> None:
    """Under pki_verify an accepted exchangeKeys also keeps its signature and chain, for the peers' getKeys."""
    if state.pki is not None:
        await _pki(state).store_key_signature(req["fl_id"], req["timestamp"], req["iteration"], req["signature"],
                                              list(req["certificate_chain"]))


async def key_signatures(state: ServerState) -> dict[str, dict[str, object]]:
    """fl_id → the ClientPublicKeys fields pki_verify adds (timestamp, iteration, signature, certificate_chain)."""
    return await _pki(state).key_signatures() if state.pki is not None else {}
