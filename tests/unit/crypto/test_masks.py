"""mask_values and add_masks against an independent computation with `cryptography` and numpy.

The reference follows MindSpore's Masking.java literally: AES-256-CTR over 4n zero bytes,
little-endian int32 words, (float)v / (float)Integer.MAX_VALUE in float32, and the masks
folded term by term in float32 (pairs, then seeds), every array from PRG offset 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from mindfed import _core, errors

crypto = _core.crypto
F32 = npt.NDArray[np.float32]
INT32_MAX = np.float32(2147483647)  # rounds to 2^31, as Java's float division does


def ref_prg(key: bytes, iv: bytes, n: int) -> F32:
    stream = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor().update(bytes(4 * n))
    words = np.frombuffer(stream, dtype="<i4")
    return words.astype(np.float32) / INT32_MAX


def ref_prg_ecb(key: bytes, iv: bytes, n: int) -> F32:
    """The same PRG built from AES-ECB over Python-integer counters: checks the 128-bit carry."""
    start = int.from_bytes(iv, "big")
    blocks = b"".join(((start + i) % 2**128).to_bytes(16, "big") for i in range((4 * n + 15) // 16))
    stream = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(blocks)[: 4 * n]
    return np.frombuffer(stream, dtype="<i4").astype(np.float32) / INT32_MAX


def ref_pair_key(private: bytes, peer_public: bytes, salt: bytes) -> bytes:
    shared = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(peer_public))
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=10000).derive(shared)


def ref_add_masks(
    arrays: list[F32], seeds: list[tuple[bytes, bytes, float]], pairs: list[tuple[bytes, bytes, bytes, bytes, float]]
) -> list[F32]:
    keys = [(ref_pair_key(p, q, salt), iv, c) for p, q, salt, iv, c in pairs] + list(seeds)
    out = []
    for a in arrays:
        acc = a.copy()
        for key, iv, coeff in keys:
            acc = acc + np.float32(coeff) * ref_prg(key, iv, a.size).reshape(a.shape)
        out.append(acc)
    return out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


def _bytes(rng: np.random.Generator, n: int) -> bytes:
    return rng.bytes(n)


# ---- mask_values ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 4096, 4097, 10000])
def test_mask_values_match_masking_java(rng: np.random.Generator, n: int) -> None:
    key, iv = _bytes(rng, 32), _bytes(rng, 16)
    values = crypto.mask_values(key, iv, n)
    assert values.dtype == np.float32
    assert values.shape == (n,)
    np.testing.assert_array_equal(values, ref_prg(key, iv, n))


def test_mask_values_are_in_minus_one_one(rng: np.random.Generator) -> None:
    values = crypto.mask_values(_bytes(rng, 32), _bytes(rng, 16), 100000)
    assert values.min() >= -1.0
    assert values.max() < 1.0
    assert abs(float(values.mean())) < 0.01


@pytest.mark.parametrize(
    "iv",
    [
        bytes(16),
        bytes(12) + b"\xff\xff\xff\xf0",  # the low 32 bits overflow
        bytes(8) + b"\xff" * 7 + b"\xf0",  # the low 64 bits overflow
        b"\xff" * 15 + b"\xf0",  # the whole counter wraps at 2^128
    ],
    ids=["zero", "carry32", "carry64", "wrap128"],
)
def test_mask_counter_counts_over_the_whole_128_bit_iv(rng: np.random.Generator, iv: bytes) -> None:
    key = _bytes(rng, 32)
    np.testing.assert_array_equal(crypto.mask_values(key, iv, 300), ref_prg_ecb(key, iv, 300))


# ---- add_masks -----------------------------------------------------------------------------


def _pairs(rng: np.random.Generator, count: int) -> list[tuple[bytes, bytes, bytes, bytes, float]]:
    out = []
    for j in range(count):
        private, _ = crypto.x25519_keypair()
        _, peer_public = crypto.x25519_keypair()
        salt = _bytes(rng, 32) if j % 2 == 0 else b""  # shareSecrets' KDF uses an empty salt
        out.append((private, peer_public, salt, _bytes(rng, 16), 1.0 if j % 2 == 0 else -1.0))
    return out


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_add_masks_with_seeds_and_pairs_over_arrays_of_different_lengths(
    rng: np.random.Generator, threads: int
) -> None:
    # Prepare: lengths around the 4096-value chunk and the 4-value AES block, a 2-D tensor, an empty one
    arrays = [rng.standard_normal(n).astype(np.float32) for n in (10000, 4097, 3, 0)]
    arrays.append(rng.standard_normal((65, 129)).astype(np.float32))
    seeds = [(_bytes(rng, 32), _bytes(rng, 16), c) for c in (-1.0, 0.125, 3.0)]
    seeds.append((_bytes(rng, 32), b"\xff" * 15 + b"\xfe", 1.0))  # counter wraps inside a thread's slice
    pairs = _pairs(rng, 3)
    expected = ref_add_masks(arrays, seeds, pairs)
    # Execute
    crypto.add_masks(arrays, seeds, pairs, threads=threads)
    # Assert: bit-exact float32
    for got, want in zip(arrays, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_add_masks_result_does_not_depend_on_thread_count(rng: np.random.Generator) -> None:
    base = rng.standard_normal(50000).astype(np.float32)
    seeds = [(_bytes(rng, 32), _bytes(rng, 16), -1.0) for _ in range(5)]
    pairs = _pairs(rng, 2)
    results = []
    for threads in (1, 2, 4, 0):
        a = base.copy()
        crypto.add_masks([a], seeds, pairs, threads=threads)
        results.append(a)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_pairwise_masks_cancel_between_the_two_ends(rng: np.random.Generator) -> None:
    # Prepare: u and v derive the same key from each other's public keys; signs are opposite
    (u_priv, u_pub), (v_priv, v_pub) = crypto.x25519_keypair(), crypto.x25519_keypair()
    salt, iv = _bytes(rng, 32), _bytes(rng, 16)
    a = np.zeros(1000, np.float32)
    # Execute
    crypto.add_masks([a], [], [(u_priv, v_pub, salt, iv, 1.0), (v_priv, u_pub, salt, iv, -1.0)], threads=2)
    # Assert
    np.testing.assert_array_equal(a, np.zeros(1000, np.float32))


def test_a_seed_mask_added_and_removed_leaves_zeros(rng: np.random.Generator) -> None:
    key, iv = _bytes(rng, 32), _bytes(rng, 16)
    a = np.zeros(777, np.float32)
    crypto.add_masks([a], [(key, iv, 1.0)], [])
    np.testing.assert_array_equal(a, crypto.mask_values(key, iv, 777))
    crypto.add_masks([a], [(key, iv, -1.0)], [])
    np.testing.assert_array_equal(a, np.zeros(777, np.float32))


def test_add_masks_with_nothing_to_add_is_a_no_op(rng: np.random.Generator) -> None:
    a = rng.standard_normal(10).astype(np.float32)
    before = a.copy()
    crypto.add_masks([a], [], [])
    crypto.add_masks([], [(bytes(32), bytes(16), 1.0)], [])
    np.testing.assert_array_equal(a, before)


# ---- bad arguments -------------------------------------------------------------------------

GOOD_SEED = (bytes(32), bytes(16), 1.0)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ([np.zeros(4, np.float64)], "dtype float64, needs float32"),
        ([np.zeros(8, np.float32)[::2]], "not C-contiguous"),
        ([np.zeros((4, 4), np.float32).T], "not C-contiguous"),
        ([[0.0, 1.0]], "must be a numpy array"),
        ([np.zeros(4, np.float32).astype(">f4")], "needs float32"),
    ],
)
def test_bad_arrays_raise_value_error(arrays: list[object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        crypto.add_masks(arrays, [GOOD_SEED], [])  # type: ignore[arg-type]


def test_read_only_array_raises_value_error_and_is_untouched() -> None:
    a = np.zeros(4, np.float32)
    a.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        crypto.add_masks([a], [GOOD_SEED], [])
    assert not a.any()


def test_overlapping_views_raise_value_error() -> None:
    buf = np.zeros(100, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        crypto.add_masks([buf[:60], buf[40:]], [GOOD_SEED], [])
    crypto.add_masks([buf[:50], buf[50:]], [GOOD_SEED], [])  # adjacent is fine


@pytest.mark.parametrize(
    ("seeds", "pairs", "match"),
    [
        ([(bytes(31), bytes(16), 1.0)], [], r"seeds\[1\]\[0\] \(key\) has 31 bytes, needs 32"),
        ([(bytes(32), bytes(15), 1.0)], [], r"seeds\[1\]\[1\] \(iv\) has 15 bytes, needs 16"),
        ([(bytes(32), bytes(16))], [], "tuple of 3"),
        ([(bytes(32), bytes(16), "1")], [], "coeff"),
        ([(bytearray(32), bytes(16), 1.0)], [], "must be bytes"),
        ([], [(bytes(32), bytes(32), b"", bytes(16))], "tuple of 5"),
        ([], [(bytes(32), bytes(31), b"", bytes(16), 1.0)], r"pairs\[0\]\[1\] \(peer_public\) has 31 bytes"),
        ([], [(bytes(32), bytes(32), "salt", bytes(16), 1.0)], r"pairs\[0\]\[2\] \(salt\) must be bytes"),
    ],
)
def test_bad_seeds_or_pairs_raise_value_error_before_touching_arrays(
    seeds: list[object], pairs: list[object], match: str
) -> None:
    a = np.zeros(16, np.float32)
    with pytest.raises(ValueError, match=match):
        crypto.add_masks([a], [GOOD_SEED, *seeds], pairs)  # type: ignore[list-item]
    assert not a.any()


@pytest.mark.parametrize("threads", [-1, 5000, 1.5])
def test_bad_thread_count_raises_value_error(threads: object) -> None:
    with pytest.raises(ValueError, match="threads"):
        crypto.add_masks([np.zeros(4, np.float32)], [GOOD_SEED], [], threads=threads)  # type: ignore[arg-type]


def test_low_order_peer_key_in_a_pair_raises_crypto_error() -> None:
    private, _ = crypto.x25519_keypair()
    with pytest.raises(errors.CryptoError, match="low-order"):
        crypto.add_masks([np.zeros(4, np.float32)], [], [(private, bytes(32), b"", bytes(16), 1.0)], threads=2)


def test_messages_never_echo_key_bytes() -> None:
    secret = bytes(range(100, 132))
    with pytest.raises(ValueError, match="private must be bytes, got bytearray") as info:
        crypto.x25519(bytearray(secret), bytes(32))  # type: ignore[arg-type]
    assert secret.hex() not in str(info.value)
    assert "100, 101" not in str(info.value)
    with pytest.raises(ValueError, match="t must be an int, got str") as info:
        crypto.shamir_split(secret, "3", 5, bytes(33))  # type: ignore[arg-type]
    assert "\\x64" not in str(info.value)
    assert "bytes" not in str(info.value)  # it names the int argument, not the call's arguments


@pytest.mark.parametrize("n", [-1, 2.0])
def test_mask_values_bad_count_raises_value_error(n: object) -> None:
    with pytest.raises(ValueError, match="n must"):
        crypto.mask_values(bytes(32), bytes(16), n)  # type: ignore[arg-type]
