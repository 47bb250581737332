"""Type stubs for mindfed._core, the C++ extension. Import the Python faces, not this module.

At run time `crypto`, `agg` and `bench` are submodules; they are written here as classes of
static methods because a single-file stub cannot declare submodules.
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]

has_cuda: bool
"""True when built with MINDFED_WITH_CUDA=ON (the optional kernels in cuda/)."""

def _raise_for_test(kind: str) -> None:
    """Raise the C++ error named by kind ('protocol', 'crypto', 'net', 'base'); tests only.

    Raises:
        mindfed.errors.ProtocolError, CryptoError, NetworkError, MindFedError: per kind.
        ValueError: unknown kind.
    """

class crypto:  # noqa: N801  (a submodule at run time)
    @staticmethod
    def random_bytes(n: int) -> bytes:
        """n bytes from OpenSSL's CSPRNG (RAND_bytes). Raises CryptoError if it fails."""

class agg:  # noqa: N801
    """In-place weighted sums. Arrays: C-contiguous native float32, any shape, equal sizes.

    Sources may be read-only and at any byte alignment. A wrong dtype, strided view or list
    raises TypeError (never a silent copy); a size mismatch or read-only destination raises
    ValueError. Every call releases the GIL for the arithmetic.
    """

    @staticmethod
    def accumulate(acc: _F32, update: _F32, weight: float) -> None:
        """acc += weight * update, in place."""

    @staticmethod
    def accumulate_group(acc: _F32, updates: Sequence[_F32], weights: Sequence[float]) -> None:
        """acc += sum_j weights[j] * updates[j], in one cache-blocked pass over acc."""

    @staticmethod
    def scale_into(src: _F32, factor: float, out: _F32) -> None:
        """out = factor * src (out may be src)."""

class bench:  # noqa: N801
    @staticmethod
    def triad(a: _F32, b: _F32, c: _F32, scalar: float, repeats: int) -> float:
        """STREAM triad a = b + scalar * c run `repeats` times; best time in seconds.

        STREAM counts 3 * a.nbytes bytes per run. Releases the GIL.
        """
