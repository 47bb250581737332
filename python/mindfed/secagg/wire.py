"""Byte layouts of PW_ENCRYPT: what devices put inside their encrypted shares (MindSpore's Java format, spec §7.1
step 3) and how the server keeps keys and revealed shares in Redis.

Lengths are checked on the way in: a key of the wrong length from one device would break every peer's masks.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from mindfed.errors import ProtocolError

PK_BYTES, IV_BYTES, SALT_BYTES = 32, 16, 32
_KEYS_BYTES = 2 * PK_BYTES + 2 * IV_BYTES + SALT_BYTES


@dataclass(frozen=True, slots=True)
class DeviceKeys:
    """What exchangeKeys publishes for one device: its two X25519 public keys and its mask IVs and salt."""

    c_pk: bytes  # encrypts the shares sent to peers (key agreement with their c_pk)
    s_pk: bytes  # derives the pairwise masks
    ind_iv: bytes  # IV of the device's own mask PRG(b_u)
    pw_iv: bytes  # IV of the pairwise masks where this device has the smaller fl_id
    pw_salt: bytes  # PBKDF2 salt of those pairwise masks

    def __post_init__(self) -> None:
        lengths = (len(self.c_pk), len(self.s_pk), len(self.ind_iv), len(self.pw_iv), len(self.pw_salt))
        if lengths != (PK_BYTES, PK_BYTES, IV_BYTES, IV_BYTES, SALT_BYTES):
            raise ProtocolError(f"exchangeKeys: c_pk, s_pk, ind_iv, pw_iv, pw_salt must be 32, 32, 16, 16, 32 "
                                f"bytes, got {lengths}")

    def pack(self) -> bytes:
        return self.c_pk + self.s_pk + self.ind_iv + self.pw_iv + self.pw_salt

    @classmethod
    def unpack(cls, blob: bytes) -> DeviceKeys:
        if len(blob) != _KEYS_BYTES:
            raise ProtocolError(f"stored keys are {len(blob)} bytes, not {_KEYS_BYTES}")
        a, b, c, d = PK_BYTES, 2 * PK_BYTES, 2 * PK_BYTES + IV_BYTES, 2 * PK_BYTES + 2 * IV_BYTES
        return cls(blob[:a], blob[a:b], blob[b:c], blob[c:d], blob[d:])


def java_less(a: str, b: str) -> bool:
    """Java's `a.compareTo(b) < 0`: UTF-16 code units, which pick the pair's salt and IV and the mask's sign."""
    return a.encode("utf-16-be") < b.encode("utf-16-be")


def minimal_be(value: int) -> bytes:
    """Java BaseUtil.integer2byteArray / bigInteger2byteArray: big-endian without leading zeros, 0 → b""."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""


@dataclass(frozen=True, slots=True)
class SharePlaintext:
    """The two Shamir shares one device sends another: of its s_sk and of its seed b_u, with their x indices."""

    s_index: int
    b_index: int
    s_share: bytes
    b_share: bytes

    def pack(self) -> bytes:
        """[len sShare, len bShare, len sIdx, len bIdx] ‖ sIdx ‖ bIdx ‖ sShare ‖ bShare (one byte per length)."""
        s_idx, b_idx = minimal_be(self.s_index), minimal_be(self.b_index)
        parts = (self.s_share, self.b_share, s_idx, b_idx)
        if any(len(p) > 255 for p in parts):
            raise ValueError("a share or index does not fit a one-byte length")
        return bytes(len(p) for p in parts) + s_idx + b_idx + self.s_share + self.b_share

    @classmethod
    def unpack(cls, data: bytes) -> SharePlaintext:
        if len(data) < 4:
            raise ProtocolError("share plaintext shorter than its header")
        ls, lb, lsi, lbi = data[:4]
        if len(data) != 4 + ls + lb + lsi + lbi:
            raise ProtocolError("share plaintext length does not match its header")
        pos = 4
        s_idx = int.from_bytes(data[pos:pos + lsi], "big")
        pos += lsi
        b_idx = int.from_bytes(data[pos:pos + lbi], "big")
        pos += lbi
        return cls(s_idx, b_idx, data[pos:pos + ls], data[pos + ls:pos + ls + lb])


@dataclass(frozen=True, slots=True)
class RevealedShare:
    """One share a reconstructing device hands the server: of `source`'s b_u (uploaded) or s_sk (dropped)."""

    source: str
    index: int
    share: bytes


_HEAD = struct.Struct(">HIH")


def pack_revealed(shares: Sequence[RevealedShare]) -> bytes:
    out = bytearray()
    for s in shares:
        name = s.source.encode()
        out += _HEAD.pack(len(name), s.index, len(s.share)) + name + s.share
    return bytes(out)


def unpack_revealed(blob: bytes) -> list[RevealedShare]:
    out, pos = [], 0
    while pos < len(blob):
        if pos + _HEAD.size > len(blob):
            raise ProtocolError("truncated revealed-share record")
        name_len, index, share_len = _HEAD.unpack_from(blob, pos)
        pos += _HEAD.size
        end = pos + name_len + share_len
        if end > len(blob):
            raise ProtocolError("truncated revealed-share record")
        out.append(RevealedShare(blob[pos:pos + name_len].decode(), index, blob[pos + name_len:end]))
        pos = end
    return out


def pack_inbox_entry(index: int, ciphertext: bytes) -> bytes:
    return index.to_bytes(4, "big", signed=True) + ciphertext


def unpack_inbox_entry(value: bytes) -> tuple[int, bytes]:
    return int.from_bytes(value[:4], "big", signed=True), value[4:]
