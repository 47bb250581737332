"""Removing the PW_ENCRYPT masks from the combined sums (spec §7.1, "Server unmask"), before the division by Σn.

The sums hold Σ_u (n_u·w_u + PRG(b_u) + Σ_v sgn(u, v)·PRG(s_uv)) over the uploaders u. Pairwise masks between two
uploaders cancel; what is left is each uploader's own PRG(b_u) and its pairs with the devices that shared secrets
and then dropped. From the shares the reconstructing devices revealed we rebuild b_u for every uploader and s_sk_d
for every dropped device d, and subtract exactly those masks: in C++, on all cores, GIL released, the keystream
folded into the sums in cache-sized chunks (no dense mask per device).

Every tensor is unmasked from mask offset 0: MindSpore's Java client masks each tensor with mask[0 .. len) (its
running offset never advances), and so does our SDK; MindSpore's own server subtracts at the concatenated offset
and gets multi-tensor models wrong (mindspore-java-client-pw-facts.md, 1).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import numpy as np

from mindfed import _core
from mindfed.cache.secagg import PwCache, UnmaskInputs
from mindfed.errors import MindFedError
from mindfed.secagg import ring
from mindfed.secagg.wire import java_less
from mindfed.server.state import ServerState

logger = logging.getLogger(__name__)


class UnmaskError(MindFedError):
    """The masks cannot be removed (too few shares, an aggregate that is not the uploaders' set)."""


def _reconstruct(inputs: UnmaskInputs, t: int, prime: bytes) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(uploader → b_u, dropped → s_sk) from the first t shares of each source, reconstructors in fl_id order."""
    by_source: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    for reconstructor in sorted(inputs.revealed):
        for revealed in inputs.revealed[reconstructor]:
            if revealed.source != reconstructor:
                by_source[revealed.source].append((revealed.index, revealed.share))
    dropped = inputs.shared - inputs.uploaded
    seeds: dict[str, bytes] = {}
    secret_keys: dict[str, bytes] = {}
    missing: list[str] = []
    for source in sorted(inputs.uploaded | dropped):
        shares = by_source.get(source, [])
        if len({index for index, _ in shares}) < t:  # t shares rebuild a secret (a degree t - 1 polynomial)
            missing.append(source)
            continue
        first: dict[int, bytes] = {}
        for index, share in shares:
            if index not in first and len(first) < t:
                first[index] = share
        unique = list(first.items())
        secret = _core.crypto.shamir_combine(unique, t, prime, 32)
        (seeds if source in inputs.uploaded else secret_keys)[source] = secret
    if missing:
        raise UnmaskError(f"fewer than t={t} distinct shares revealed for {len(missing)} of the devices "
                          f"(first: {missing[0]})")
    return seeds, secret_keys


def remove_masks(sums: list[np.ndarray], inputs: UnmaskInputs, t: int, prime: bytes, threads: int = 0) -> int:
    """Subtract every remaining mask from `sums` (in place); returns the number of mask streams removed."""
    seeds, pairs = remaining_masks(inputs, t, prime)
    _core.crypto.add_masks(sums, seeds, pairs, threads)
    return len(seeds) + len(pairs)


def remove_ring_masks(words: np.ndarray, inputs: UnmaskInputs, t: int, prime: bytes, threads: int = 0) -> int:
    """The same masks removed mod 2^32 from the ring sum of secure compressed uploads (uint32, in place)."""
    seeds, pairs = remaining_masks(inputs, t, prime)
    _core.crypto.add_ring_masks(words, seeds, pairs, threads)
    return len(seeds) + len(pairs)


def remaining_masks(inputs: UnmaskInputs, t: int, prime: bytes
                    ) -> tuple[list[tuple[bytes, bytes, float]], list[tuple[bytes, bytes, bytes, bytes, float]]]:
    """The (seeds, pairs) streams that undo what is left in the uploaders' sum: -PRG(b_u), dropped pairs."""
    if inputs.uploaded - set(inputs.keys):
        raise UnmaskError("an uploader has no keys")
    seeds_by_id, dropped_keys = _reconstruct(inputs, t, prime)
    seeds = [(seed, inputs.keys[u].ind_iv, -1.0) for u, seed in seeds_by_id.items()]
    pairs = []
    for d, s_sk in dropped_keys.items():
        for u in sorted(inputs.uploaded):
            low = inputs.keys[d] if java_less(d, u) else inputs.keys[u]
            # u added sgn(u, d)·PRG(s_ud) with sgn = +1 when u > d; add the opposite
            pairs.append((s_sk, inputs.keys[u].s_pk, low.pw_salt, low.pw_iv, 1.0 if java_less(u, d) else -1.0))
    return seeds, pairs


async def _inputs(state: ServerState, iteration: int, tags: set[str]) -> UnmaskInputs:
    inputs = await PwCache(state.store_iteration(iteration), state.ttl.iteration_s).unmask_inputs()
    if tags != inputs.uploaded:
        raise UnmaskError(f"the aggregate holds {len(tags)} updates but {len(inputs.uploaded)} devices uploaded")
    return inputs


async def unmask(state: ServerState, iteration: int, sums: dict[str, np.ndarray], tags: set[str],
                 prime: bytes) -> None:
    """Remove the masks of `iteration` from the combined `sums` of the updates `tags`.

    Raises:
        UnmaskError: the aggregate is not exactly the uploaders' updates, or a secret cannot be rebuilt.
    """
    inputs = await _inputs(state, iteration, tags)
    t = state.config.encrypt.pw_encrypt.reconstruct_secrets_threshold
    arrays = [sums[name] for name in sorted(sums)]
    streams = await asyncio.to_thread(remove_masks, arrays, inputs, t, prime)
    _log_removed(iteration, streams, inputs)


async def unmask_ring(state: ServerState, iteration: int, limb_sums: np.ndarray, tags: set[str],
                      prime: bytes) -> np.ndarray:
    """The unmasked ring sum S = Σ n_u·c_u (uint32, K words) of the secure compressed uploads `tags`, from their
    combined limb sums (secagg/ring.py).

    Raises:
        UnmaskError: as `unmask`.
    """
    inputs = await _inputs(state, iteration, tags)
    t = state.config.encrypt.pw_encrypt.reconstruct_secrets_threshold
    words = ring.ring_sum(limb_sums)
    streams = await asyncio.to_thread(remove_ring_masks, words, inputs, t, prime)
    _log_removed(iteration, streams, inputs)
    return words


def _log_removed(iteration: int, streams: int, inputs: UnmaskInputs) -> None:
    logger.info("it %d: removed %d mask streams (%d uploaders, %d dropped after sharing)", iteration, streams,
                len(inputs.uploaded), len(inputs.shared - inputs.uploaded))
