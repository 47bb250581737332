"""RSA-PSS request signatures of pki_verify (spec §10.2) and the replay window on their timestamps.

MindSpore verifies with `RSA_verify_PKCS1_PSS(SHA-256(data), salt −2)`: PSS over SHA-256 with MGF1-SHA-256 and the
salt length recovered from the signature, which is `PSS.AUTO` here. Devices (Java's SHA256withRSA/PSS) sign with a
32-byte salt; any salt length verifies.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAX_SIGNATURE_BYTES = 1024  # an RSA-8192 signature; anything longer is refused unread


def start_fl_job_data(fl_id: str, timestamp: str) -> bytes:
    """What startFLJob's sign_data covers: `fl_id + " " + timestamp`."""
    return f"{fl_id} {timestamp}".encode()


def round_data(timestamp: str, iteration: int) -> bytes:
    """What every later pki-checked round signs: `timestamp ‖ str(iteration)` (pushListSign's req_signature too)."""
    return f"{timestamp}{iteration}".encode()


def exchange_keys_data(c_pk: bytes, s_pk: bytes, timestamp: str, iteration: int) -> bytes:
    """exchangeKeys signs its public keys as well: `c_pk ‖ s_pk ‖ timestamp ‖ str(iteration)`."""
    return bytes(c_pk) + bytes(s_pk) + round_data(timestamp, iteration)


def _pss(salt_length: Any) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)


@functools.lru_cache(maxsize=4096)
def _public_key(cert_pem: str) -> rsa.RSAPublicKey | None:
    """The RSA key of a PEM certificate (parsed once per attestation), None when it is not an RSA certificate."""
    try:
        key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


def verify_pss(cert_pem: str, data: bytes, signature: bytes) -> bool:
    """Whether `signature` is an RSA-PSS-SHA-256 signature of `data` by the key of the certificate `cert_pem`.
    Never raises: malformed certificates and signatures are simply not valid."""
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        return False
    key = _public_key(cert_pem)
    if key is None:
        return False
    try:
        key.verify(bytes(signature), data, _pss(padding.PSS.AUTO), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_pss(private_key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """The device side: RSA-PSS-SHA-256 of `data` with a digest-length salt, as Java's SHA256withRSA/PSS."""
    return private_key.sign(data, _pss(padding.PSS.DIGEST_LENGTH), hashes.SHA256())


def timestamp_in_window(timestamp: str, now_ms: int, window_ms: int) -> bool:
    """MindSpore's verifyTimeStamp: `timestamp` is decimal ms since the epoch and |now − timestamp| ≤ window.
    A timestamp that is not a plain decimal number (MindSpore: std::stoll throws) is outside any window."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 18:
        return False
    return abs(now_ms - int(timestamp)) <= window_ms
