"""Frame codec: header layout, incremental decoding over any split, and rejection of bad input."""

from __future__ import annotations

import random
import struct

import pytest

from mindfed import _core
from mindfed.errors import ProtocolError

MAX = 1 << 20


def test_header_is_little_endian_magic_type_flags_id_len() -> None:
    # Execute
    wire = _core.net.encode_frame(0x0102, 0x1122334455667788, 3, b"abc")
    # Assert
    assert len(wire) == _core.net.HEADER_BYTES + 3
    magic, type_, flags, request_id, length = struct.unpack("<IHHQQ", wire[:24])
    assert wire[:4] == b"MFD1"
    assert (type_, flags, request_id, length) == (0x0102, 3, 0x1122334455667788, 3)
    assert magic == 0x3144464D
    assert wire[24:] == b"abc"


@pytest.mark.parametrize("chunk", [1, 7, 24, 25, 1000, 70_000])
def test_decoder_reassembles_frames_split_anywhere(chunk: int) -> None:
    # Prepare: small, empty and staging-sized-plus payloads back to back
    rng = random.Random(chunk)
    payloads = [b"", b"x", rng.randbytes(100), rng.randbytes(200_000), rng.randbytes(65_536), b""]
    stream = b"".join(_core.net.encode_frame(i, 1000 + i, i % 3, p) for i, p in enumerate(payloads))
    decoder = _core.net.FrameDecoder(MAX)
    # Execute
    frames = []
    for start in range(0, len(stream), chunk):
        frames += decoder.feed(stream[start : start + chunk])
    # Assert
    assert frames == [(i, 1000 + i, i % 3, p) for i, p in enumerate(payloads)]
    assert not decoder.mid_frame


def test_decoder_reports_partial_frame_until_complete() -> None:
    # Prepare
    wire = _core.net.encode_frame(5, 9, 0, b"hello")
    decoder = _core.net.FrameDecoder(MAX)
    # Execute / Assert
    assert decoder.feed(wire[:10]) == []
    assert decoder.mid_frame
    assert decoder.feed(wire[10:-1]) == []
    assert decoder.feed(wire[-1:]) == [(5, 9, 0, b"hello")]
    assert not decoder.mid_frame


def test_decoder_rejects_bad_magic() -> None:
    # Prepare
    garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    # Execute / Assert
    with pytest.raises(ProtocolError, match="bad frame magic"):
        _core.net.FrameDecoder(MAX).feed(garbage)


def test_decoder_rejects_oversize_payload_before_allocating() -> None:
    # Prepare: a header that announces 1 TiB
    header = struct.pack("<IHHQQ", 0x3144464D, 1, 0, 1, 1 << 40)
    # Execute / Assert
    with pytest.raises(ProtocolError, match="exceeds the limit of 1048576"):
        _core.net.FrameDecoder(MAX).feed(header)


def test_decoder_accepts_payload_exactly_at_limit() -> None:
    wire = _core.net.encode_frame(1, 1, 0, bytes(1000))
    assert _core.net.FrameDecoder(1000).feed(wire) == [(1, 1, 0, bytes(1000))]


def test_encode_rejects_out_of_range_type() -> None:
    with pytest.raises(ValueError, match="65536"):
        _core.net.encode_frame(65536, 0, 0, b"")
