"""Binary encodings of partial sums and models, for Redis (durability) and peers.

Layout: 4-byte little-endian header length, a JSON header padded to a multiple of 8 bytes, then the float32 data of
every named tensor back to back in header order. Decoding gives numpy views into the blob (no copy).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mindfed.errors import ProtocolError
from mindfed.model.weights import ModelWeights


def _encode(header: dict[str, Any], arrays: Sequence[np.ndarray]) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(4 + len(text)) % 8)
    return b"".join([len(text).to_bytes(4, "little"), text, *(np.ascontiguousarray(a, np.float32).tobytes()
                                                             for a in arrays)])


def _decode(blob: bytes | bytearray | memoryview) -> tuple[dict[str, Any], int]:
    if len(blob) < 4:
        raise ProtocolError("blob shorter than its header length")
    length = int.from_bytes(bytes(blob[:4]), "little")
    if 4 + length > len(blob):
        raise ProtocolError("blob header runs past the end")
    return json.loads(bytes(blob[4:4 + length])), 4 + length


def _views(blob: bytes | bytearray | memoryview, offset: int, names: Sequence[str],
           sizes: Sequence[int]) -> dict[str, np.ndarray]:
    if offset + 4 * sum(sizes) != len(blob):
        raise ProtocolError(f"blob holds {len(blob) - offset} data bytes, header announces {4 * sum(sizes)}")
    out: dict[str, np.ndarray] = {}
    for name, size in zip(names, sizes, strict=True):
        out[name] = np.frombuffer(blob, np.float32, size, offset)
        offset += 4 * size
    return out


@dataclass(frozen=True, slots=True)
class PartialSums:
    """One server's sums of Σ(w·n) per tensor, the Σn per tensor, and the fl_ids they contain."""

    sums: Mapping[str, np.ndarray]
    data_sizes: Mapping[str, int]
    tags: Sequence[str]

    def encode(self) -> bytes:
        names = sorted(self.sums)
        return _encode({"names": names, "sizes": [int(self.sums[n].size) for n in names],
                        "data_sizes": {n: int(self.data_sizes.get(n, 0)) for n in names}, "tags": list(self.tags)},
                       [self.sums[n] for n in names])

    @classmethod
    def decode(cls, blob: bytes | bytearray | memoryview) -> PartialSums:
        header, offset = _decode(blob)
        sums = _views(blob, offset, header["names"], header["sizes"])
        return cls(sums, {k: int(v) for k, v in header["data_sizes"].items()}, list(header["tags"]))


def encode_model(model: ModelWeights) -> bytes:
    names = model.names
    return _encode({"names": names, "shapes": [list(model.shapes[n]) for n in names],
                    "require_aggr": [model.require_aggr[n] for n in names]}, [model[n] for n in names])


def decode_model(blob: bytes | bytearray | memoryview) -> ModelWeights:
    header, offset = _decode(blob)
    names, shapes = header["names"], [tuple(s) for s in header["shapes"]]
    views = _views(blob, offset, names, [int(np.prod(s)) for s in shapes])
    return ModelWeights({n: views[n].reshape(s) for n, s in zip(names, shapes, strict=True)},
                        dict(zip(names, header["require_aggr"], strict=True)))
