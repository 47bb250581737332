"""Binary encodings of partial sums and models, for Redis (durability) and peers.

Layout: 4-byte little-endian header length, a JSON header padded to a multiple of 8 bytes, then the float32 data of
every named tensor back to back in header order. Encoding copies each tensor once into one buffer; decoding gives
numpy views into the blob (no copy).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mindfed.errors import ProtocolError
from mindfed.model.weights import ModelWeights


def _encode(header: dict[str, Any], arrays: Sequence[np.ndarray], into: np.ndarray | None = None) -> np.ndarray:
    """One uint8 buffer, every tensor copied into it once (a `tobytes()` + `join` pair costs 17× more on 40 MB):
    the first bytes of `into` when it is large enough (its pages are already there: a fresh 40 MB buffer costs more
    in page faults than the copy), else a new array."""
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(4 + len(text)) % 8)
    offset = 4 + len(text)
    size = offset + 4 * sum(int(a.size) for a in arrays)
    out = into[:size] if into is not None and into.size >= size else np.empty(size, np.uint8)
    out[:4] = np.frombuffer(len(text).to_bytes(4, "little"), np.uint8)
    out[4:offset] = np.frombuffer(text, np.uint8)
    for array in arrays:
        end = offset + 4 * int(array.size)
        np.copyto(out[offset:end].view(np.float32), np.asarray(array, np.float32).reshape(-1))
        offset = end
    return out


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

    def encode(self, into: np.ndarray | None = None) -> np.ndarray:
        """The blob as a uint8 array (sendable and storable as is: it supports the buffer protocol); written into
        the start of `into` (a uint8 array the caller reuses) when it is large enough."""
        names = sorted(self.sums)
        return _encode({"names": names, "sizes": [int(self.sums[n].size) for n in names],
                        "data_sizes": {n: int(self.data_sizes.get(n, 0)) for n in names}, "tags": list(self.tags)},
                       [self.sums[n] for n in names], into)

    @classmethod
    def decode(cls, blob: bytes | bytearray | memoryview) -> PartialSums:
        header, offset = _decode(blob)
        sums = _views(blob, offset, header["names"], header["sizes"])
        return cls(sums, {k: int(v) for k, v in header["data_sizes"].items()}, list(header["tags"]))


def encode_model(model: ModelWeights, into: np.ndarray | None = None) -> np.ndarray:
    """The model's blob, into the start of `into` when it is large enough (as `PartialSums.encode`)."""
    names = model.names
    return _encode({"names": names, "shapes": [list(model.shapes[n]) for n in names],
                    "require_aggr": [model.require_aggr[n] for n in names]}, [model[n] for n in names], into)


class Scratch:
    """A reused encode buffer (a server's checkpoints, and the model it publishes at an iteration's end): a fresh
    40 MB one costs more in page faults than encoding into it, and one buffer for both is one model's memory less at
    the server's peak. Whoever encodes into it holds `ServerState.checkpoint_lock` until the blob is written. A
    write that returned is done with it (Redis answered after reading every byte); one that failed or timed out may
    not be: redis-py then closes the connection, and from Python 3.12 on asyncio's transport still sends the queued
    views of it, so the writer writes inside `writing()` and the next encode after a failure gets a buffer of its
    own."""

    def __init__(self) -> None:
        self.buffer: np.ndarray | None = None

    def fit(self, blob: np.ndarray) -> None:
        """Keep `blob`'s buffer for next time if it is a new one (the encoder allocated it), with room to grow."""
        if self.buffer is None or blob.base is not self.buffer:
            self.buffer = np.empty(blob.size + (blob.size >> 6) + 4096, np.uint8)

    def abandon(self) -> None:
        """Leave the buffer to whoever may still read it (a failed write, a copy that timed out)."""
        self.buffer = None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around the write of a blob encoded here: a write that fails (or is cancelled) abandons the buffer."""
        try:
            yield
        except BaseException:
            self.abandon()
            raise


def decode_model(blob: bytes | bytearray | memoryview) -> ModelWeights:
    header, offset = _decode(blob)
    names, shapes = header["names"], [tuple(s) for s in header["shapes"]]
    views = _views(blob, offset, names, [int(np.prod(s)) for s in shapes])
    return ModelWeights({n: views[n].reshape(s) for n, s in zip(names, shapes, strict=True)},
                        dict(zip(names, header["require_aggr"], strict=True)))
