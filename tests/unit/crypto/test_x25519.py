"""X25519 against RFC 7748's vectors (§5.2 scalar multiplication, §6.1 Diffie-Hellman)."""

from __future__ import annotations

import pytest

from mindfed import _core, errors

crypto = _core.crypto
h = bytes.fromhex


@pytest.mark.parametrize(
    ("scalar", "u", "out"),
    [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ],
)
def test_rfc7748_scalar_multiplication_vectors(scalar: str, u: str, out: str) -> None:
    assert crypto.x25519(h(scalar), h(u)) == h(out)


def test_rfc7748_iterated_vector_after_1_and_1000_rounds() -> None:
    # Prepare
    k = u = (9).to_bytes(32, "little")
    results = {}
    # Execute
    for i in range(1, 1001):
        k, u = crypto.x25519(k, u), k
        if i in (1, 1000):
            results[i] = k
    # Assert
    assert results[1] == h("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
    assert results[1000] == h("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")


def test_rfc7748_diffie_hellman_alice_and_bob() -> None:
    alice = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice_pub = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    bob_pub = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert crypto.x25519_public(alice) == alice_pub
    assert crypto.x25519_public(bob) == bob_pub
    assert crypto.x25519(alice, bob_pub) == shared
    assert crypto.x25519(bob, alice_pub) == shared


def test_fresh_keypairs_agree_and_differ() -> None:
    # Execute
    (a_priv, a_pub), (b_priv, b_pub) = crypto.x25519_keypair(), crypto.x25519_keypair()
    # Assert
    assert len(a_priv) == len(a_pub) == 32
    assert a_priv != b_priv
    assert crypto.x25519_public(a_priv) == a_pub
    assert crypto.x25519(a_priv, b_pub) == crypto.x25519(b_priv, a_pub)


@pytest.mark.parametrize("low_order", [bytes(32), (1).to_bytes(32, "little")])
def test_low_order_peer_key_raises_crypto_error(low_order: bytes) -> None:
    private, _ = crypto.x25519_keypair()
    with pytest.raises(errors.CryptoError, match="low-order"):
        crypto.x25519(private, low_order)


@pytest.mark.parametrize(("private", "peer"), [(bytes(31), bytes(32)), (bytes(32), bytes(33)), (b"", b"")])
def test_wrong_key_lengths_raise_value_error(private: bytes, peer: bytes) -> None:
    with pytest.raises(ValueError, match="bytes, needs 32"):
        crypto.x25519(private, peer)


def test_public_of_wrong_length_or_type_raises_value_error() -> None:
    with pytest.raises(ValueError, match="needs 32"):
        crypto.x25519_public(bytes(16))
    with pytest.raises(ValueError, match="must be bytes"):
        crypto.x25519_public(bytearray(32))  # type: ignore[arg-type]
