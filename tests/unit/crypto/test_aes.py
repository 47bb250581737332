"""AES-256 CTR and CBC against NIST SP 800-38A (F.5.5, F.2.5), padding and error behaviour."""

from __future__ import annotations

import pytest

from mindfed import _core, errors

crypto = _core.crypto
h = bytes.fromhex

KEY = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
PLAIN = h(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)


def test_ctr_matches_sp800_38a_f55() -> None:
    iv = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    expected = h(
        "601ec313775789a5b7a7f504bbf3d228"
        "f443e3ca4d62b59aca84e990cacaf5c5"
        "2b0930daa23de94ce87017ba2d84988d"
        "dfc9c58db67aada613c2dd08457941a6"
    )
    assert crypto.aes256_ctr(KEY, iv, PLAIN) == expected
    assert crypto.aes256_ctr(KEY, iv, expected) == PLAIN
    assert crypto.aes256_ctr(KEY, iv, PLAIN[:21]) == expected[:21]  # partial blocks
    assert crypto.aes256_ctr(KEY, iv, b"") == b""


def test_cbc_matches_sp800_38a_f25_then_one_padding_block() -> None:
    iv = h("000102030405060708090a0b0c0d0e0f")
    expected = h(
        "f58c4c04d6e5f1ba779eabfb5f7bfbd6"
        "9cfc4e967edb808d679f777bc6702c7d"
        "39f23369a9d9bacfa530e26304231461"
        "b2eb05e2c39be9fcda6c19078c6a9d1b"
    )
    # Execute
    ct = crypto.aes256_cbc_encrypt(KEY, iv, PLAIN)
    # Assert: PKCS#7 adds a whole block of 0x10 to a block-aligned plaintext
    assert ct[:64] == expected
    assert len(ct) == 80
    assert crypto.aes256_cbc_decrypt(KEY, iv, ct) == PLAIN


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 31, 32, 100])
def test_cbc_round_trips_and_pads_to_the_next_block(n: int) -> None:
    iv = bytes(range(16))
    plain = bytes(range(n))
    ct = crypto.aes256_cbc_encrypt(KEY, iv, plain)
    assert len(ct) == (n // 16 + 1) * 16
    assert crypto.aes256_cbc_decrypt(KEY, iv, ct) == plain


@pytest.mark.parametrize("last_byte", [0x00, 0x11, 0xFF])
def test_cbc_decrypt_of_malformed_padding_raises_crypto_error(last_byte: int) -> None:
    # Prepare: a block whose plaintext ends in a byte that is no PKCS#7 pad length; drop the real pad block
    iv = bytes(16)
    block = bytes(15) + bytes([last_byte])
    ct = crypto.aes256_cbc_encrypt(KEY, iv, block)[:16]
    # Execute / Assert
    with pytest.raises(errors.CryptoError, match="bad padding"):
        crypto.aes256_cbc_decrypt(KEY, iv, ct)


def test_cbc_decrypt_with_inconsistent_pad_bytes_raises_crypto_error() -> None:
    iv = bytes(16)
    ct = crypto.aes256_cbc_encrypt(KEY, iv, bytes(13) + b"\x01\x03\x03")[:16]  # says 3 pad bytes, has 01 03 03
    with pytest.raises(errors.CryptoError, match="bad padding"):
        crypto.aes256_cbc_decrypt(KEY, iv, ct)


@pytest.mark.parametrize("n", [0, 1, 15, 17])
def test_cbc_decrypt_of_bad_length_raises_crypto_error(n: int) -> None:
    with pytest.raises(errors.CryptoError, match="multiple of 16"):
        crypto.aes256_cbc_decrypt(KEY, bytes(16), bytes(n))


@pytest.mark.parametrize(
    "fn", [crypto.aes256_ctr, crypto.aes256_cbc_encrypt, crypto.aes256_cbc_decrypt], ids=["ctr", "cbc_enc", "cbc_dec"]
)
def test_wrong_key_or_iv_length_raises_value_error(fn: object) -> None:
    with pytest.raises(ValueError, match="key has 16 bytes, needs 32"):
        fn(bytes(16), bytes(16), bytes(16))  # type: ignore[operator]
    with pytest.raises(ValueError, match="iv has 12 bytes, needs 16"):
        fn(KEY, bytes(12), bytes(16))  # type: ignore[operator]
