"""SignDS on the device (spec §7.4): MindSpore's Java `SecureProtocol.signDSModel` and `UpdateModel.signDSEncrypt`.

A device uploads no weights: a random sign s = ±1, and `sign_dim_out` flat indices over the concatenated update
Δ = w_after − w_before (startFLJob name order), drawn by the exponential mechanism so that about `sign_thr_ratio` of
them come from the top-k of s·Δ (k = ⌊sign_k·D⌋). It also sends b̂, a randomized response (ε = 5) of "the top-k
magnitude is below the server's r_est bound", from which the server adapts r_est (privacy/signds_rate.py).

numpy only. Randomness comes from a `random.Random`; the default is `random.SystemRandom` (the OS CSPRNG, as Java's
SecureRandom), and tests pass a seeded `random.Random`.

Deviations from the Java client, each a defect there: the order of Δ is a correct sort with Java's tie order (its
bottom-up `mergeShort` drops an unpaired trailing run, so for lengths such as 12, 100 or 61706 its "top-k" is not
sorted, and for 3 or 7 it repeats indices); and the inverse-CDF draw of the number of top-k picks stops at
sign_dim_out (Java loops forever if rounding leaves the cumulative sum below its uniform draw).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mindfed.protocol.plan import CipherParams

RR_EPS = 5.0  # allocateBudget(): the randomized-response budget of b̂
RANGE_MULTIPLE = np.float32(2.0)  # magRR's MULTIPLE


@dataclass(frozen=True, slots=True)
class SignDSUpdate:
    """What a SignDS updateModel carries instead of weights.

    Attributes:
        sign: +1 or −1.
        index_array: The selected flat indices, sorted ascending (int32, as the FlatBuffers field).
        b_hat: "1" or "0", the randomized response of the magnitude test.
        names: The tensor names, in the order the indices count over (feature_map with names only).
    """

    sign: int
    index_array: np.ndarray
    b_hat: str
    names: tuple[str, ...]


@functools.lru_cache(maxsize=65536)
def comb(n: float, k: float) -> float:
    """n choose k in doubles, as Java's `comb` (0 outside 0 ≤ k ≤ n)."""
    if not (k <= n and n >= 0 and k >= 0):
        return 0.0
    m = n + 1
    res = 1.0
    for i in range(1, int(min(k, n - k)) + 1):
        res *= m - i
        res /= i
    return res


def count_combs(num_inter: int, topk_dim: int, input_dim: int, output_dim: int) -> float:
    """Output sets with `num_inter` of their `output_dim` indices in the top-k: C(k, v)·C(d−k, h−v)."""
    return comb(topk_dim, num_inter) * comb(input_dim - topk_dim, output_dim - num_inter)


def calc_pmf(thr: int, topk_dim: int, input_dim: int, output_dim: int, eps: float) -> list[float]:
    """pmf of the number of top-k indices in the output: weight e^eps from `thr` on (empty if all weights are 0)."""
    weights = [count_combs(v, topk_dim, input_dim, output_dim) * (1.0 if v < thr else math.exp(eps))
               for v in range(output_dim + 1)]
    total = sum(weights)
    if total == 0:
        return []
    return [w / total for w in weights]


def calc_expectation(pmf: Sequence[float]) -> float:
    return sum(i * p for i, p in enumerate(pmf))


def calc_opt_thr(topk_dim: int, input_dim: int, output_dim: int, eps: float) -> int:
    """The threshold in [1, output_dim] with the largest expected number of top-k picks (first local maximum)."""
    opt_expect, opt_t = 0.0, 0
    for t in range(1, output_dim + 1):
        expect = calc_expectation(calc_pmf(t, topk_dim, input_dim, output_dim, eps))
        if expect > opt_expect:
            opt_expect, opt_t = expect, t
        else:
            break
    return max(opt_t, 1)


@functools.lru_cache(maxsize=64)
def find_opt_output_dim(thr_inter_ratio: float, topk_dim: int, input_dim: int, eps: float) -> int:
    """The largest output dimension whose expected top-k share stays ≥ `thr_inter_ratio` (sign_dim_out = 0)."""
    output_dim = 1
    while True:
        thr = calc_opt_thr(topk_dim, input_dim, output_dim, eps)
        ratio = calc_expectation(calc_pmf(thr, topk_dim, input_dim, output_dim, eps)) / output_dim
        if ratio < thr_inter_ratio or math.isnan(ratio):
            break
        output_dim += 1
    return max(1, output_dim - 1)


def count_inters(rng: random.Random, thr_dim: int, denominator: float, topk_dim: int, input_dim: int,
                 output_dim: int, eps: float) -> int:
    """How many indices come from the top-k: an inverse-CDF draw from the exponential-mechanism pmf."""
    target = rng.random()
    num_inter = 0
    prob = count_combs(num_inter, topk_dim, input_dim, output_dim) / denominator
    while prob < target and num_inter < output_dim:
        num_inter += 1
        weight = 1.0 if num_inter < thr_dim else math.exp(eps)
        prob += weight * count_combs(num_inter, topk_dim, input_dim, output_dim) / denominator
    return num_inter


def random_select(rng: random.Random, pool: np.ndarray, start: int, span: int, count: int, out: np.ndarray,
                  out_start: int) -> None:
    """`count` distinct entries of `pool[start:start+span]` into `out[out_start:]` (Java's partial Fisher–Yates
    from the end of the span; `pool` is permuted in place, as there)."""
    if count < 0 or span < count or pool.size < start + span:
        raise ValueError(f"cannot select {count} of {span} indices")
    for i in range(span, span - count, -1):
        j = rng.randrange(i)
        picked = pool[start + j]
        pool[start + j] = pool[start + i - 1]
        pool[start + i - 1] = picked
        out[out_start + span - i] = picked


def update_order(delta: np.ndarray, descending: bool) -> np.ndarray:
    """Indices of `delta` sorted descending (sign +1) or ascending (sign −1); ties with the higher index first,
    which is the order Java's merge (ties taken from the right run) gives."""
    key = -delta if descending else delta
    return (delta.size - 1 - np.argsort(key[::-1], kind="stable")).astype(np.int64)


def randomized_response(rng: random.Random, value: bool, eps: float = RR_EPS) -> bool:
    """`value` with probability e^eps/(1+e^eps), else its negation."""
    keep = math.exp(eps) / (1.0 + math.exp(eps))
    return value if rng.random() < keep else not value


def magnitude_bit(delta: np.ndarray, order: np.ndarray, topk_dim: int, r_est: float, is_reached: int) -> bool:
    """magRR's test before the response: |mean of the top-k Δ| < 2·r_est (not reached) or < r_est/2 (reached).

    The mean is of the signed values, as Java's (the spec's "mean |Δ|" is not what the client computes), summed in
    float32 in order.
    """
    total = np.cumsum(delta[order[:topk_dim]], dtype=np.float32)[-1] if topk_dim > 0 else np.float32(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_client = abs(np.float32(total) / np.float32(topk_dim))
    bound = RANGE_MULTIPLE * np.float32(r_est) if is_reached == 0 else np.float32(r_est) / RANGE_MULTIPLE
    return bool(r_client < bound)


def sign_ds_update(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray], names: Sequence[str],
                   cipher: CipherParams, rng: random.Random | None = None) -> SignDSUpdate:
    """The SignDS upload of one device (signDSEncrypt + signDSModel).

    Args:
        before: The weights received in startFLJob, by name.
        after: The locally trained weights (not multiplied by the data size), by name.
        names: The tensors to cover, in startFLJob order.
        cipher: The startFLJob cipher parameters (sign_k, sign_eps, sign_thr_ratio, sign_dim_out, signds_r_est,
            signds_is_reached).
        rng: Randomness; None uses the OS CSPRNG.

    Returns:
        The update to send.

    Raises:
        ValueError: The parameters leave nothing to select (Java fails the round with RequestError).
    """
    rng = rng or random.SystemRandom()
    sign = 1 if rng.random() < 0.5 else -1  # SecureRandom.nextBoolean
    delta = np.concatenate([np.reshape(np.asarray(after[n], np.float32), -1)
                            - np.reshape(np.asarray(before[n], np.float32), -1) for n in names])
    input_dim = int(delta.size)
    topk_dim = int(np.float32(cipher.sign_k) * np.float32(input_dim))  # Java: float × int, truncated
    eps = float(np.float32(cipher.sign_eps))
    output_dim = cipher.sign_dim_out or find_opt_output_dim(float(np.float32(cipher.sign_thr_ratio)), topk_dim,
                                                            input_dim, eps)
    thr_dim = calc_opt_thr(topk_dim, input_dim, output_dim, eps)
    comb_less = sum(count_combs(i, topk_dim, input_dim, output_dim) for i in range(thr_dim))
    comb_more = sum(count_combs(i, topk_dim, input_dim, output_dim) for i in range(thr_dim, output_dim + 1))
    denominator = comb_less + math.exp(eps) * comb_more
    if denominator == 0 or not math.isfinite(denominator):
        raise ValueError(f"SignDS: no output set of {output_dim} of {input_dim} dimensions can be weighed")
    num_inter = count_inters(rng, thr_dim, denominator, topk_dim, input_dim, output_dim, eps)
    if topk_dim < num_inter or output_dim <= 0:
        raise ValueError(f"SignDS: {num_inter} top-k picks of a top-{topk_dim} set")
    order = update_order(delta, descending=sign > 0)
    b_hat = randomized_response(rng, magnitude_bit(delta, order, topk_dim, cipher.signds_r_est,
                                                   cipher.signds_is_reached))
    selected = np.zeros(output_dim, np.int64)
    random_select(rng, order, 0, topk_dim, num_inter, selected, 0)
    random_select(rng, order, topk_dim, input_dim - topk_dim, output_dim - num_inter, selected, num_inter)
    return SignDSUpdate(sign, np.sort(selected).astype(np.int32), "1" if b_hat else "0", tuple(names))
