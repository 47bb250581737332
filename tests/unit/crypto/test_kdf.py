"""PBKDF2-HMAC-SHA256 against published vectors and hashlib (OpenSSL's PKCS5_PBKDF2_HMAC)."""

from __future__ import annotations

import hashlib

import pytest

from mindfed import _core

crypto = _core.crypto


@pytest.mark.parametrize(
    ("password", "salt", "iterations", "expected"),
    [
        # The widely published "password"/"salt" vectors (RFC 6070's inputs with SHA-256).
        (b"password", b"salt", 1, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"),
        (b"password", b"salt", 2, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"),
        (b"password", b"salt", 4096, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"),
    ],
)
def test_published_password_salt_vectors(password: bytes, salt: bytes, iterations: int, expected: str) -> None:
    assert crypto.pbkdf2_sha256(password, salt, iterations, 32) == bytes.fromhex(expected)


@pytest.mark.parametrize(
    ("password", "salt", "iterations", "expected"),
    [
        (
            b"passwd",
            b"salt",
            1,
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
            "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
        ),
        (
            b"Password",
            b"NaCl",
            80000,
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
            "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d",
        ),
    ],
)
def test_rfc7914_section11_vectors(password: bytes, salt: bytes, iterations: int, expected: str) -> None:
    assert crypto.pbkdf2_sha256(password, salt, iterations, 64) == bytes.fromhex(expected)


@pytest.mark.parametrize(
    ("password", "salt", "iterations", "length"),
    [
        (bytes(range(32)), bytes(32), 10000, 32),  # PW_ENCRYPT's shape: a shared secret and a 32-byte salt
        (bytes(range(32)), b"", 10000, 32),  # shareSecrets' c_uv: empty salt
        (b"k" * 64, b"s" * 55, 3, 33),  # a key of exactly one block; a salt that fills the first block
        (b"k" * 65, b"s" * 56, 3, 100),  # a key longer than a block is hashed first
        (b"", b"salt", 7, 1),
    ],
)
def test_agrees_with_hashlib(password: bytes, salt: bytes, iterations: int, length: int) -> None:
    assert crypto.pbkdf2_sha256(password, salt, iterations, length) == hashlib.pbkdf2_hmac(
        "sha256", password, salt, iterations, length
    )


def test_defaults_are_mindspores_10000_iterations_and_32_bytes() -> None:
    secret, salt = bytes(range(1, 33)), bytes(range(32))
    assert crypto.pbkdf2_sha256(secret, salt) == hashlib.pbkdf2_hmac("sha256", secret, salt, 10000, 32)


@pytest.mark.parametrize(("iterations", "length"), [(0, 32), (-1, 32), (1, 0), (1, -5)])
def test_bad_iterations_or_length_raise_value_error(iterations: int, length: int) -> None:
    with pytest.raises(ValueError, match="iterations|length"):
        crypto.pbkdf2_sha256(b"p", b"s", iterations, length)
