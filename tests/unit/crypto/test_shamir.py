"""Shamir split/combine over MindSpore's 264-bit safe prime, and the prime itself."""

from __future__ import annotations

import itertools
import random

import pytest

from mindfed import _core, errors

crypto = _core.crypto


def _is_probable_prime(n: int, rounds: int = 32) -> bool:
    if n < 4:
        return n in (2, 3)
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    rng = random.Random(7)
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _lagrange_at_zero(points: list[tuple[int, int]], p: int) -> int:
    total = 0
    for j, (xj, yj) in enumerate(points):
        num, den = 1, 1
        for m, (xm, _) in enumerate(points):
            if m != j:
                num, den = num * xm % p, den * (xm - xj) % p
        total = (total + yj * num * pow(den, -1, p)) % p
    return total


@pytest.fixture(scope="module")
def prime() -> bytes:
    return crypto.generate_safe_prime()


def test_safe_prime_has_264_bits_in_33_big_endian_bytes(prime: bytes) -> None:
    p = int.from_bytes(prime, "big")
    assert len(prime) == 33
    assert p.bit_length() == 264
    assert _is_probable_prime(p)
    assert _is_probable_prime((p - 1) // 2)


def test_safe_prime_of_other_sizes_has_ceil_bits_over_8_bytes() -> None:
    prime = crypto.generate_safe_prime(100)
    assert len(prime) == 13
    assert int.from_bytes(prime, "big").bit_length() == 100


SECRETS = [
    bytes(range(1, 33)),
    b"\x00" + bytes(range(1, 32)),  # zero top byte: MindSpore's server loses it
    b"\x00\x00\x00" + b"\xff" * 29,
    bytes(32),  # all zero
    b"\xff" * 32,
]


@pytest.mark.parametrize("secret", SECRETS, ids=["plain", "zero_top", "three_zero_top", "zero", "ones"])
@pytest.mark.parametrize(("t", "n"), [(1, 1), (1, 4), (2, 3), (3, 5), (7, 10)])
def test_round_trip_pads_to_32_bytes(prime: bytes, secret: bytes, t: int, n: int) -> None:
    shares = crypto.shamir_split(secret, t, n, prime)
    assert len(shares) == n
    assert crypto.shamir_combine(list(enumerate(shares, start=1))[:t], t, prime) == secret


def test_any_t_of_n_shares_reconstruct(prime: bytes) -> None:
    secret = b"\x00" + bytes(range(200, 231))
    shares = list(enumerate(crypto.shamir_split(secret, 3, 6, prime), start=1))
    for subset in itertools.permutations(shares, 3):
        assert crypto.shamir_combine(list(subset), 3, prime) == secret


def test_shares_lie_on_a_polynomial_of_degree_t_minus_1(prime: bytes) -> None:
    # An independent Python interpolation agrees, and any t points predict the others.
    p, secret = int.from_bytes(prime, "big"), bytes(range(32))
    points = [(i, int.from_bytes(s, "big")) for i, s in enumerate(crypto.shamir_split(secret, 4, 8, prime), start=1)]
    assert _lagrange_at_zero(points[:4], p) == int.from_bytes(secret, "big")
    assert _lagrange_at_zero(points[4:], p) == int.from_bytes(secret, "big")


def test_t_minus_1_shares_do_not_give_the_secret(prime: bytes) -> None:
    secret = bytes(range(32))
    shares = list(enumerate(crypto.shamir_split(secret, 4, 6, prime), start=1))
    with pytest.raises(errors.CryptoError, match="3 shares, threshold is 4"):
        crypto.shamir_combine(shares[:3], 4, prime)
    # Interpolating t-1 points as if the threshold were t-1 gives an unrelated field element.
    p = int.from_bytes(prime, "big")
    wrong = _lagrange_at_zero([(i, int.from_bytes(s, "big")) for i, s in shares[:3]], p)
    assert wrong != int.from_bytes(secret, "big")


def test_only_the_first_t_shares_count(prime: bytes) -> None:
    secret = bytes(range(5, 37))
    shares = list(enumerate(crypto.shamir_split(secret, 2, 3, prime), start=1))
    assert crypto.shamir_combine([*shares[:2], (9, b"garbage"), (0, b"")], 2, prime) == secret


def test_shares_are_minimal_big_endian(prime: bytes) -> None:
    # t = 1: every share is the secret itself, in BaseUtil.bigInteger2byteArray's encoding
    assert crypto.shamir_split(bytes(32), 1, 3, prime) == [b"", b"", b""]
    assert crypto.shamir_split(b"\x00\x00\x01\x02", 1, 2, prime) == [b"\x01\x02", b"\x01\x02"]
    shares = crypto.shamir_split(bytes(range(32)), 5, 50, prime)
    assert all(s == b"" or s[0] != 0 for s in shares)
    assert all(int.from_bytes(s, "big") < int.from_bytes(prime, "big") for s in shares)


def test_combine_accepts_an_empty_share_as_zero(prime: bytes) -> None:
    assert crypto.shamir_combine([(1, b"")], 1, prime) == bytes(32)
    assert crypto.shamir_combine([(1, b"\x07")], 1, prime, length=2) == b"\x00\x07"


@pytest.mark.parametrize(
    ("shares", "match"),
    [
        ([(1, b"\x01"), (1, b"\x02")], "index 1 appears twice"),
        ([(0, b"\x01"), (2, b"\x02")], "indices start at 1"),
        ([(-3, b"\x01"), (2, b"\x02")], "indices start at 1"),
        ([(1, b"\x01")], "1 shares, threshold is 2"),
        ([(1, b"\xff" * 40), (2, b"\x01")], "not below the prime"),
        ([(1, b"\x01"), (2**80, b"\x01")], "out of range"),
    ],
)
def test_bad_shares_raise_crypto_error(prime: bytes, shares: list[tuple[int, bytes]], match: str) -> None:
    with pytest.raises(errors.CryptoError, match=match):
        crypto.shamir_combine(shares, 2, prime)


def test_result_wider_than_length_raises_crypto_error(prime: bytes) -> None:
    secret = b"\x01" + bytes(32)  # a 33-byte secret below the 264-bit prime
    shares = list(enumerate(crypto.shamir_split(secret, 2, 2, prime), start=1))
    with pytest.raises(errors.CryptoError, match="33 bytes, more than the expected 32"):
        crypto.shamir_combine(shares, 2, prime)
    assert crypto.shamir_combine(shares, 2, prime, length=33) == secret


@pytest.mark.parametrize(
    ("secret", "t", "n", "match"),
    [
        (bytes(32), 0, 3, "1 <= t <= n"),
        (bytes(32), 4, 3, "1 <= t <= n"),
        (b"\xff" * 33, 2, 3, "not below the prime"),
    ],
)
def test_bad_split_arguments_raise_value_error(prime: bytes, secret: bytes, t: int, n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        crypto.shamir_split(secret, t, n, prime)


def test_split_needs_n_below_the_prime() -> None:
    with pytest.raises(ValueError, match="n < prime"):
        crypto.shamir_split(b"\x01", 2, 7, b"\x07")


@pytest.mark.parametrize("bits", [0, 8, 5000])
def test_safe_prime_size_out_of_range_raises_value_error(bits: int) -> None:
    with pytest.raises(ValueError, match="bits"):
        crypto.generate_safe_prime(bits)
