"""DP_ENCRYPT on the device (spec §7.3, Java `UpdateModel.DpEncrypter` and `FLLiteClient.updateDpNormClip`).

The device clips its update Δ = w_after − w_before (all updated tensors together) to L2 norm C, adds N(0, σ²) to
every element and uploads (w_before + Δ·min(1, C/‖Δ‖₂) + noise)·n. σ comes from the analytic Gaussian calibration
of (dp_eps, dp_delta) for sensitivity C (mindfed.privacy.analytic_gaussian). C adapts: it starts at 0.05 and after
every iteration becomes dp_norm_clip × ‖w_global_new − w_before‖₂ (iteration 1) or the smaller of that and the
previous C, as in Java.

Noise: Java draws from SecureRandom (a CSPRNG). Here a numpy PCG64 generator is seeded with 256 bits from the OS
(`secrets`), so runs never repeat, but the stream itself is not cryptographically strong; tests pass their own.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from mindfed.privacy.analytic_gaussian import analytic_sigma

logger = logging.getLogger(__name__)

INITIAL_CLIP = 0.05  # Java FLLiteClient.dpNormClipAdapt before any adaptation


def secure_generator() -> np.random.Generator:
    """A generator seeded from the OS entropy pool: noise no one can replay from a known seed."""
    return np.random.Generator(np.random.PCG64(secrets.randbits(256)))


def l2_distance(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], names: Iterable[str]) -> float:
    """‖a − b‖₂ over the tensors `names`, all together (float64 sums: float32 overflows no sooner, but rounds)."""
    total = 0.0
    for name in names:
        left, right = np.reshape(a[name], -1), np.reshape(b[name], -1)
        if left.size != right.size:
            raise ValueError(f"{name}: {left.size} values after training, {right.size} before")
        diff = left.astype(np.float64) - right.astype(np.float64)
        total += float(diff @ diff)
    return math.sqrt(total)


def clip_factor(norm: float, clip: float) -> float:
    """min(1, C/‖Δ‖₂); 1 for Δ = 0 (Java logs it and clips by 0: the same upload, as 0·Δ = Δ)."""
    return 1.0 if norm == 0 else min(1.0, clip / norm)


def dp_upload(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray], data_size: int, sigma: float,
              clip: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The DP_ENCRYPT upload: name → (w_before + Δ·clip_factor + N(0, σ²))·n, float32, shaped as `after`.

    Args:
        before: the weights the device received (w_before), flat or shaped; must hold every name of `after`.
        after: the trained weights of every updated tensor.
        data_size: n, the device's number of training samples.
        sigma: σ of the noise per element (`analytic_sigma(dp_eps, dp_delta, clip)`).
        clip: C, the L2 bound of Δ.
        rng: the noise source (`secure_generator()` outside tests).
    """
    factor = clip_factor(l2_distance(after, before, after), clip)
    upload: dict[str, np.ndarray] = {}
    for name, trained in after.items():
        w_before = np.reshape(before[name], np.shape(trained)).astype(np.float64)
        delta = (np.asarray(trained, np.float64) - w_before) * factor
        noised = w_before + delta + rng.normal(0.0, sigma, size=np.shape(trained))
        upload[name] = (noised * data_size).astype(np.float32)
    return upload


@dataclass(slots=True)
class DpDevice:
    """One device's DP_ENCRYPT state across iterations: the adaptive clip and its noise source.

    Attributes:
        rng: the noise generator.
        clip: the current adaptive C.
    """

    rng: np.random.Generator
    clip: float = INITIAL_CLIP

    def protect(self, before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray], data_size: int,
                dp_eps: float, dp_delta: float) -> dict[str, np.ndarray]:
        """The upload of this iteration, with σ calibrated for the current C."""
        sigma = analytic_sigma(dp_eps, dp_delta, self.clip)
        return dp_upload(before, after, data_size, sigma, self.clip, self.rng)

    def adapt_clip(self, iteration: int, new_global: Mapping[str, np.ndarray], before: Mapping[str, np.ndarray],
                   dp_norm_clip: float) -> float:
        """Java updateDpNormClip: C = dp_norm_clip × ‖w_global_new − w_before‖₂ in iteration 1, else the smaller of
        that and the previous C. Norm over the tensors the new model holds (the aggregated ones). Returns C."""
        names = [name for name in new_global if name in before]
        candidate = dp_norm_clip * l2_distance(new_global, before, names)
        if iteration == 1 or candidate < self.clip:
            self.clip = candidate
        logger.debug("[DP] iteration %d: adaptive dpNormClip %g", iteration, self.clip)
        return self.clip
