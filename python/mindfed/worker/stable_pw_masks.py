"""A cross-silo worker's STABLE_PW_ENCRYPT masks (spec §7.1; MindSpore's worker update_model_kernel.h).

Each worker publishes one X25519 key s_pk with a random pw_iv and pw_salt; its upload, the tensors concatenated in
name order, gets Σ_v sgn(u, v)·PRG(PBKDF2(X25519(s_sk_u, s_pk_v), salt_m), iv_m) over every other worker v, where m
is the smaller fl_id of the pair (byte order, as std::string) and sgn = −1 if u < v else +1. The pair's two streams
are equal, so the masks cancel in the server's sum when every worker that exchanged keys uploads. There is no secret
sharing: a worker that drops out leaves its pairs' masks in the sum, and the server fails the iteration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mindfed import _core
from mindfed.secagg.wire import IV_BYTES, SALT_BYTES


@dataclass(frozen=True, slots=True)
class PeerKey:
    """What getKeys returns for one worker."""

    s_pk: bytes
    pw_iv: bytes
    pw_salt: bytes


@dataclass(slots=True)
class StableKeys:
    """One worker's key material for one iteration; the private key never leaves the object (nor any log)."""

    fl_id: str
    s_pk: bytes = b""
    pw_iv: bytes = b""
    pw_salt: bytes = b""
    _s_sk: bytes = field(default=b"", repr=False)

    @classmethod
    def fresh(cls, fl_id: str) -> StableKeys:
        s_sk, s_pk = _core.crypto.x25519_keypair()
        return cls(fl_id, s_pk, _core.crypto.random_bytes(IV_BYTES), _core.crypto.random_bytes(SALT_BYTES), s_sk)

    def noise(self, peers: Mapping[str, PeerKey], length: int) -> np.ndarray:
        """Σ over the other workers of the signed pairwise PRG streams: `length` float32 values.

        Computed into a zero array and added to the weights afterwards, as MindSpore's worker does, so two
        workers' pair terms are exact negatives of each other.
        """
        pairs = []
        for peer, key in sorted(peers.items()):
            if peer == self.fl_id:
                continue
            mine_low = self.fl_id.encode() < peer.encode()
            salt, iv = (self.pw_salt, self.pw_iv) if mine_low else (key.pw_salt, key.pw_iv)
            pairs.append((self._s_sk, key.s_pk, salt, iv, -1.0 if mine_low else 1.0))
        noise = np.zeros(length, dtype=np.float32)
        if pairs:
            _core.crypto.add_masks([noise], [], pairs)
        return noise

    def mask(self, upload: Mapping[str, np.ndarray], peers: Mapping[str, PeerKey]) -> dict[str, np.ndarray]:
        """`upload` (name -> flat float32) plus this worker's noise over the tensors concatenated in name order."""
        names = sorted(upload)
        flat = np.concatenate([np.asarray(upload[n], dtype=np.float32).reshape(-1) for n in names])
        flat += self.noise(peers, flat.size)
        out, offset = {}, 0
        for name in names:
            size = int(np.size(upload[name]))
            out[name] = flat[offset:offset + size]
            offset += size
        return out
