"""The minimal protobuf codec: varints and field iteration, against hand-written wire bytes."""

import pytest

from mindfed.model import protobuf_wire as wire


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (2**63 - 1, b"\xff" * 8 + b"\x7f"),
    ],
)
def test_varint_matches_protobuf_encoding(value, encoded):
    assert wire.encode_varint(value) == encoded
    assert wire.decode_varint(encoded, 0, len(encoded)) == (value, len(encoded))


def test_negative_int64_is_ten_bytes_and_reads_back_signed():
    encoded = wire.encode_varint(-1)

    assert encoded == b"\xff" * 9 + b"\x01"
    value, _ = wire.decode_varint(encoded, 0, len(encoded))
    assert wire.as_int64(value) == -1


def test_truncated_and_overlong_varints_report_offset():
    with pytest.raises(wire.WireError, match="offset 2"):
        wire.decode_varint(b"\x00\x00\x80\x80", 2, 4)
    with pytest.raises(wire.WireError, match="longer than 10"):
        wire.decode_varint(b"\x80" * 11, 0, 11)


def test_iter_fields_reads_each_wire_type_with_absolute_offsets():
    # field 1 varint 150, field 2 "hi", field 3 fixed32, field 4 fixed64
    message = b"\x08\x96\x01" + b"\x12\x02hi" + b"\x1d" + b"\x01\x02\x03\x04" + b"\x21" + b"\x00" * 8
    buffer = b"junk" + message

    fields = list(wire.iter_fields(buffer, 4, len(buffer)))

    assert [(f.number, f.wire_type, f.key_offset) for f in fields] == [(1, 0, 4), (2, 2, 7), (3, 5, 11), (4, 1, 16)]
    assert fields[0].value == 150
    assert buffer[fields[1].start : fields[1].end] == b"hi"


def test_length_past_end_and_groups_are_refused():
    with pytest.raises(wire.WireError, match="claims 5 bytes"):
        list(wire.iter_fields(b"\x0a\x05abc", 0, 5))
    with pytest.raises(wire.WireError, match="wire type 3"):
        list(wire.iter_fields(b"\x0b", 0, 1))
    with pytest.raises(wire.WireError, match="field number 0"):
        list(wire.iter_fields(b"\x02\x00", 0, 2))
