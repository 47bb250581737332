"""The extension module is built, linked against libcrypto, and maps C++ errors onto mindfed.errors."""

from __future__ import annotations

import pytest

from mindfed import _core, errors


def test_core_exposes_its_submodules() -> None:
    assert callable(_core.agg.accumulate)
    assert callable(_core.bench.triad)
    assert callable(_core.crypto.random_bytes)


def test_has_cuda_is_a_bool() -> None:
    assert isinstance(_core.has_cuda, bool)


def test_random_bytes_gives_requested_length_and_fresh_values() -> None:
    # Execute
    first, second = _core.crypto.random_bytes(32), _core.crypto.random_bytes(32)
    # Assert
    assert isinstance(first, bytes)
    assert len(first) == 32
    assert first != second
    assert len(set(first)) > 16  # 32 uniform bytes repeat a value only a few times
    assert _core.crypto.random_bytes(0) == b""


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("protocol", errors.ProtocolError),
        ("crypto", errors.CryptoError),
        ("net", errors.NetworkError),
        ("base", errors.MindFedError),
    ],
)
def test_cpp_errors_arrive_as_mindfed_errors(kind: str, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught:
        _core._raise_for_test(kind)
    assert type(caught.value) is expected
    assert kind in str(caught.value)


def test_invalid_argument_arrives_as_value_error() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        _core._raise_for_test("nonsense")
