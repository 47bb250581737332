"""Rényi DP of the sampled Gaussian mechanism at integer orders, and its conversion to (ε, δ).

The RDP of one step with sampling rate q and noise multiplier z = σ/C is Mironov, Talwar & Zhang 2019 ("Rényi
Differential Privacy of the Sampled Gaussian Mechanism", §3.3): for an integer order α ≥ 2,

    A_α = Σ_{i=0..α} C(α, i) (1 − q)^(α−i) q^i exp((i² − i) / (2z²)),    RDP(α) = log(A_α) / (α − 1),

the same sum TF-Privacy's and Opacus' `compute_rdp` evaluate for integer orders (`_compute_log_a_int`), summed here
in log space. RDP composes additively over steps. The conversion to (ε, δ) is the tighter one of Balle et al. 2020
("Hypothesis Testing Interpretations and Renyi Differential Privacy", Theorem 21), which TF-Privacy uses today:

    ε = min_α  RDP(α) + log((α − 1)/α) − (log δ + log α)/(α − 1).

It is never larger than the classic ε = RDP(α) + log(1/δ)/(α − 1) (Mironov 2017, Proposition 3), also given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

# Integer orders: TF-Privacy's default list restricted to integers (2..64, then 128, 256, 512).
DEFAULT_ORDERS: tuple[int, ...] = (*range(2, 65), 128, 256, 512)


def _log_add(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


def _log_a_int(q: float, z: float, order: int) -> float:
    """log A_α of the sum above, term by term in log space (no overflow at large orders or small z)."""
    log_a = -math.inf
    for i in range(order + 1):
        log_coef = math.lgamma(order + 1) - math.lgamma(i + 1) - math.lgamma(order - i + 1)
        term = log_coef + i * math.log(q) + (order - i) * math.log1p(-q) + (i * i - i) / (2.0 * z * z)
        log_a = _log_add(log_a, term)
    return log_a


@functools.lru_cache(maxsize=1024)  # servers ask for the same few steps at every iteration end
def rdp_step(q: float, z: float, order: int) -> float:
    """RDP at integer `order` of one step of the sampled Gaussian mechanism (rate q, noise multiplier z)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"sampling rate q must be in [0, 1]; got {q}")
    if order < 2 or int(order) != order:
        raise ValueError(f"orders must be integers >= 2; got {order}")
    if z <= 0:
        return math.inf
    if q == 0:
        return 0.0
    if q == 1.0:
        return order / (2.0 * z * z)
    return _log_a_int(q, z, int(order)) / (order - 1)


def compute_rdp(q: float, z: float, steps: int, orders: Sequence[int] = DEFAULT_ORDERS) -> list[float]:
    """RDP after `steps` compositions, one value per order (TF-Privacy `compute_rdp(q, z, steps, orders)`)."""
    return [steps * rdp_step(q, z, order) for order in orders]


def epsilon(rdp: Sequence[float], delta: float, orders: Sequence[int] = DEFAULT_ORDERS) -> tuple[float, int]:
    """(ε, the order that gives it) at `delta`, by the Balle et al. 2020 conversion; ε never below 0."""
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1); got {delta}")
    best, best_order = math.inf, orders[0]
    for value, order in zip(rdp, orders, strict=True):
        eps = value + math.log1p(-1.0 / order) - (math.log(delta) + math.log(order)) / (order - 1)
        if eps < best:
            best, best_order = eps, order
    return max(0.0, best), best_order


def epsilon_classic(rdp: Sequence[float], delta: float, orders: Sequence[int] = DEFAULT_ORDERS) -> float:
    """ε = min_α RDP(α) + log(1/δ)/(α − 1) (Mironov 2017): looser, kept to show the bound above is tighter."""
    return min(value + math.log(1.0 / delta) / (order - 1) for value, order in zip(rdp, orders, strict=True))
