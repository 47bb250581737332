"""σ of the analytic Gaussian mechanism (Balle & Wang 2018, "Improving the Gaussian Mechanism for Differential
Privacy", Algorithm 1), calibrated as MindSpore's Java device does (`SecureProtocol.calculateSigma`, spec §7.3).

The same bisection, branches and tolerance as Java: δ₀ = B⁺(ε, 0); if δ > δ₀ find s with B⁺(ε, s) = δ and take
α = √(1 + s/2) − √(s/2), if δ < δ₀ find s with B⁻(ε, s) = δ and take α = √(1 + s/2) + √(s/2); σ = α·C/√(2ε).
One deliberate difference: Φ here is the exact normal CDF (math.erfc), where Java integrates erf numerically with
10000 trapezoid steps and rounds it to float32. Java's Φ is off by up to ~1e-8 (more in the far tail, where erf's
float32 rounding makes Φ(−x) exactly 0 for x ≳ 5.4), so its σ can differ from ours in the 4th-6th digit; the test
re-runs Java's algorithm to show how close the two are.
"""

from __future__ import annotations

import math
from collections.abc import Callable

DELTA_TOLERANCE = 1e-6  # Java SecureProtocol.deltaError
MAX_BISECTIONS = 1000  # Java iterMax


def phi(x: float) -> float:
    """The standard normal CDF, exact to double precision also in the lower tail (erfc, not 1 + erf)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def b_plus(eps: float, s: float) -> float:
    """B⁺(ε, s) = Φ(√(εs)) − e^ε Φ(−√(ε(s+2)))."""
    return phi(math.sqrt(eps * s)) - _exp_times(eps, phi(-math.sqrt(eps * (s + 2.0))))


def b_minus(eps: float, s: float) -> float:
    """B⁻(ε, s) = Φ(−√(εs)) − e^ε Φ(−√(ε(s+2)))."""
    return phi(-math.sqrt(eps * s)) - _exp_times(eps, phi(-math.sqrt(eps * (s + 2.0))))


def _exp_times(eps: float, p: float) -> float:
    """e^ε·p without overflowing for large ε (Java's Math.exp gives Infinity past ε ≈ 709)."""
    return 0.0 if p <= 0.0 else math.exp(eps + math.log(p))


def _solve_s(b: Callable[[float, float], float], eps: float, delta: float, increasing: bool) -> float:
    """Java's calculateSPositive (increasing=True: B⁺ grows with s) / calculateSNegative (B⁻ falls with s):
    double the upper end until it brackets δ, then bisect until B is within DELTA_TOLERANCE below δ."""
    s_inf, s_sup = 0.0, 1.0
    if increasing:
        while b(eps, s_sup) <= delta:
            s_inf, s_sup = s_sup, 2.0 * s_sup
    else:
        while b(eps, s_sup) > delta:
            s_inf, s_sup = s_sup, 2.0 * s_sup
    s_mid = s_inf + (s_sup - s_inf) / 2.0
    for _ in range(MAX_BISECTIONS + 1):
        value = b(eps, s_mid)
        if value <= delta:
            if delta - value <= DELTA_TOLERANCE:
                break
            if increasing:
                s_inf = s_mid
            else:
                s_sup = s_mid
        elif increasing:
            s_sup = s_mid
        else:
            s_inf = s_mid
        s_mid = s_inf + (s_sup - s_inf) / 2.0
    return s_mid


def noise_over_clip(eps: float, delta: float) -> float:
    """σ/C = α/√(2ε): the noise multiplier, independent of the clipping bound C."""
    if not (eps > 0 and 0 < delta < 1):
        raise ValueError(f"the analytic Gaussian mechanism needs eps > 0 and 0 < delta < 1; got {eps}, {delta}")
    delta_zero = b_plus(eps, 0.0)
    if delta > delta_zero:
        s = _solve_s(b_plus, eps, delta, increasing=True)
        alpha = math.sqrt(1.0 + s / 2.0) - math.sqrt(s / 2.0)
    elif delta < delta_zero:
        s = _solve_s(b_minus, eps, delta, increasing=False)
        alpha = math.sqrt(1.0 + s / 2.0) + math.sqrt(s / 2.0)
    else:
        alpha = 1.0
    return alpha / math.sqrt(2.0 * eps)


def analytic_sigma(eps: float, delta: float, clip: float) -> float:
    """σ of Gaussian noise that makes an L2-sensitivity-`clip` release (ε, δ)-DP (Java calculateSigma)."""
    return noise_over_clip(eps, delta) * clip
