"""A cached response lives once, in a memfd: the same bytes through the file and the mapping, none in the heap; a model
answer is built there in place."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

from mindfed.protocol.response_builders import build_response_get_model
from mindfed.protocol.writer import Allocate
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


def _model(floats: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [("conv.weight", rng.standard_normal(floats, dtype=np.float32)), ("fc.bias", np.arange(10, dtype="<f4"))]


def test_a_model_answer_built_in_place_is_the_builders_bytes_and_costs_no_heap_copy() -> None:
    # Prepare: a 2M-float model and the answer the plain builder makes of it
    model = _model(2_000_000)
    expected = build_response_get_model(0, "ok", 3, model, "1700000000000")

    # Execute: the same answer built straight into the memfd, heap traced
    tracemalloc.start()
    try:
        body = SharedBody.built(lambda into: build_response_get_model(0, "ok", 3, model, "1700000000000", into=into))
        held = tracemalloc.get_traced_memory()[1]  # the peak while building
    finally:
        tracemalloc.stop()

    # Assert: byte for byte through the mapping and through the file at its offset (what sendfile sends)
    assert body.offset > 0
    assert len(body) == len(expected)
    assert body.view() == expected
    assert os.pread(body.file().fileno(), len(body), body.offset) == expected
    assert held < 1 << 20, f"{held} bytes of heap at the peak for an 8 MB answer"


def test_a_message_from_elsewhere_is_copied_in() -> None:
    # a builder that outgrew its allocated buffer returns a view of its own bytearray; a write may ignore `into`
    def outgrown(into: Allocate) -> memoryview:
        into(16)
        return memoryview(bytearray(b"grown elsewhere"))

    body = SharedBody.built(outgrown)
    assert (body.offset, bytes(body)) == (0, b"grown elsewhere")

    def not_at_the_end(into: Allocate) -> memoryview:  # in the mapping, but not ending where it ends
        mapping = into(64)
        mapping[:5] = b"front"
        return memoryview(mapping)[:5]

    assert bytes(SharedBody.built(not_at_the_end)) == b"front"
    assert os.fstat(body.file().fileno()).st_size == len(body)
    assert bytes(SharedBody.built(lambda into: b"plain bytes")) == b"plain bytes"


def test_the_buffer_is_allocated_once() -> None:
    def twice(into: Allocate) -> bytes:
        into(16)
        into(16)
        return b""

    with pytest.raises(RuntimeError, match="one buffer"):
        SharedBody.built(twice)
