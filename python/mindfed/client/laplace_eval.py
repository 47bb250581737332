"""Laplace noise on the unsupervised-eval vector (spec §7.5, Java `SecureProtocol.addLaplaceNoise`).

When startFLJob's `unsupervised_eval_flg` is "LAPLACE" a device adds Laplace(0, 1/laplace_eps) noise to each element
of its eval vector before uploading it; `laplace_eps` is the cipher's `laplace_params` (encrypt.laplace_eval.
laplace_eval_eps). Our simulator uploads no unsupervised-eval items today, so nothing calls `eval_items_for_upload`
yet; a device that does must call it, and it refuses a flag it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mindfed.errors import PrivacyModeError

LAPLACE = "LAPLACE"
PLAIN_FLAGS = frozenset({"", "NOT_EVAL", "NOT_ENCRYPT"})  # no eval asked, or eval without noise


def laplace_noised(vector: np.ndarray, laplace_eps: float, rng: np.random.Generator) -> np.ndarray:
    """`vector` + Laplace(0, 1/laplace_eps) per element, float32."""
    if not laplace_eps > 0:
        raise PrivacyModeError(f"LAPLACE eval noise needs laplace_eps > 0, the server sent {laplace_eps}")
    values = np.asarray(vector, np.float64)
    return (values + rng.laplace(0.0, 1.0 / laplace_eps, size=values.shape)).astype(np.float32)


def eval_items_for_upload(flag: str, items: Mapping[str, np.ndarray], laplace_eps: float,
                          rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The unsupervised-eval items to upload under `flag`: noised under LAPLACE, as they are under no noise."""
    if flag == LAPLACE:
        return {name: laplace_noised(vector, laplace_eps, rng) for name, vector in items.items()}
    if flag in PLAIN_FLAGS:
        return {name: np.asarray(vector, np.float32) for name, vector in items.items()}
    raise PrivacyModeError(f"startFLJob asks for unsupervised_eval_flg {flag!r}, which this device SDK cannot "
                           "apply; refusing to upload the eval vector without it")
