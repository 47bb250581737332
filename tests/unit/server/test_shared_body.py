"""A cached response lives once, in a memfd: the same bytes through the file and the mapping, none in the heap."""

from __future__ import annotations

import os
import tracemalloc

import pytest

from mindfed.server.shared_body import SharedBody


def test_the_body_is_in_the_file_and_the_mapping_and_not_in_the_heap() -> None:
    # Prepare: 8 MB of known bytes
    data = os.urandom(8 << 20)
    tracemalloc.start()
    try:
        # Execute
        body = SharedBody(data)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Assert: the same bytes both ways, read-only, and no heap copy of them
    assert len(body) == len(data)
    assert body.view() == data
    assert bytes(body) == data
    assert os.pread(body.file().fileno(), len(data), 0) == data
    assert held < 1 << 20, f"{held} bytes of heap for an 8 MB body"
    with pytest.raises(TypeError):
        body.view()[0] = 0


def test_an_empty_body_and_one_whose_view_outlives_it() -> None:
    assert bytes(SharedBody(b"")) == b""
    view = SharedBody(b"abc").view()  # the body is garbage at once; the view keeps the mapping
    assert bytes(view) == b"abc"
