"""STABLE_PW_ENCRYPT on the server (spec §7.1, last paragraph): cross-silo workers publish one X25519 key each
(exchangeKeys), read everyone's (getKeys) and add pairwise masks that cancel in the sum, with no secret sharing and
no unmask. The server only stores and hands out keys, and makes sure the masks can cancel: an aggregate is formed
only from exactly the workers that exchanged keys, and an iteration that cannot get there fails naming who is
missing, instead of publishing a model that is still masked.
"""

from __future__ import annotations

from mindfed.cache.secagg import PwCache
from mindfed.config import FLConfig
from mindfed.config.enums import EncryptType
from mindfed.server.state import ServerState
from mindfed.server.unmask import UnmaskError

NAMED_AT_MOST = 5  # fl_ids quoted in a reason; the count says how many there are


def is_stable_pw(cfg: FLConfig) -> bool:
    return cfg.encrypt.encrypt_train_type == EncryptType.STABLE_PW_ENCRYPT


def _named(ids: set[str]) -> str:
    listed = ", ".join(sorted(ids)[:NAMED_AT_MOST])
    return listed + (", ..." if len(ids) > NAMED_AT_MOST else "")


async def missing_workers(state: ServerState, iteration: int) -> str:
    """Why the masks of `iteration` cannot cancel yet, in words ("" when nobody is missing): workers admitted by
    startFLJob that published no key, and workers that published a key and did not upload."""
    cache = state.store_iteration(iteration)
    pw = PwCache(cache, state.ttl.iteration_s)
    admitted = set(await cache.admitted_ids())
    keyed = set(await pw.all_keys())
    uploaded = await pw.uploaded()
    parts = []
    if admitted - keyed:
        parts.append(f"{len(admitted - keyed)} admitted worker(s) published no key ({_named(admitted - keyed)})")
    if keyed - uploaded:
        parts.append(f"{len(keyed - uploaded)} worker(s) that exchanged keys did not upload "
                     f"({_named(keyed - uploaded)})")
    if not parts:
        return ""
    return "STABLE_PW_ENCRYPT: " + "; ".join(parts) + ": their pairwise masks cannot cancel."


async def check_masks_cancel(state: ServerState, iteration: int, uploaders: set[str]) -> None:
    """Before the aggregate is published: the uploaders must be exactly the workers that exchanged keys.

    Raises:
        UnmaskError: someone is missing or extra; the sum still holds their masks.
    """
    keyed = set(await PwCache(state.store_iteration(iteration), state.ttl.iteration_s).all_keys())
    if keyed == uploaders:
        return
    missing, extra = keyed - uploaders, uploaders - keyed
    parts = []
    if missing:
        parts.append(f"{len(missing)} worker(s) that exchanged keys are not in the sum ({_named(missing)})")
    if extra:
        parts.append(f"{len(extra)} update(s) from workers without a key ({_named(extra)})")
    raise UnmaskError("STABLE_PW_ENCRYPT: " + "; ".join(parts) + ": the pairwise masks do not cancel")
