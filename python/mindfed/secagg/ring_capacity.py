"""How many devices the 2^32 ring of a secure compressed upload holds (secagg/ring.py).

Pure Python, so that the config check (`compression.secure_compressed_upload`) refuses a job the ring cannot sum
without loading the codec.
"""

from __future__ import annotations

from mindfed.protocol.codes import MAX_DATA_SIZE

CODE_MAX = 254  # codes 0..254: an odd number of levels, so that a zero difference is the code 127 exactly
RING_MODULUS = 2**32
MAX_DEVICES = (RING_MODULUS - 1) // (CODE_MAX * MAX_DATA_SIZE)  # 258 devices of the largest data size


def ring_capacity_ok(total_data_size: int) -> bool:
    """Whether Σ n_u·c_u cannot wrap: Σn·CODE_MAX < 2^32."""
    return total_data_size >= 0 and total_data_size * CODE_MAX < RING_MODULUS
