"""A server's identity: the certificate, its key and chain from a PKCS#12 file, checked as MindSpore checks it.

MindSpore's order and texts (`ssl_http.cc::InitSSL`, spec §10.1): the file must exist, the password must not be empty
("The client password's value is empty." [sic]), PKCS12_parse must succeed ("PKCS12_parse failed."), the certificate
must be valid now ("Verify Cert Time failed."). Our messages start with the file's key and path and keep MindSpore's
text whole, so its tests' `in str(e)` checks hold; they never carry the password.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from mindfed.errors import ConfigError

EMPTY_PASSWORD = "The client password's value is empty."
PARSE_FAILED = "PKCS12_parse failed."
NOT_PKCS12 = "Create PKCS12 cert failed, please check whether the certificate is correct."
TIME_FAILED = "Verify Cert Time failed."


@dataclass(frozen=True)
class Identity:
    """What a PKCS#12 file holds: the leaf certificate, its private key and the further certificates (chain)."""

    path: Path
    cert: x509.Certificate
    key: PrivateKeyTypes
    chain: tuple[x509.Certificate, ...]


def load_identity(path: str | Path, password: str, key: str = "ssl.server_cert_path",
                  now: dt.datetime | None = None) -> Identity:
    """The identity in the PKCS#12 file `path`, decrypted with `password`, valid at `now` (default: now).

    Args:
        key: the YAML key `path` came from, named in every error.

    Raises:
        ConfigError: a missing file, an empty or wrong password, no certificate or key inside, or a certificate
            not yet or no longer valid (the message names the file and the dates).
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{key}: The file path of server_cert_path {file} is not exist.")
    if not password:
        raise ConfigError(f"{key} {file}: {EMPTY_PASSWORD} Give the p12 password in SSLConfig or the environment "
                          "(MINDFED_SSL_SERVER_PASSWORD / MINDFED_SSL_CLIENT_PASSWORD, or *_FILE)")
    data = file.read_bytes()
    if not data.startswith(b"\x30"):  # DER SEQUENCE: anything else is no PKCS#12 at all
        raise ConfigError(f"{key} {file}: {NOT_PKCS12}")
    try:
        key_obj, cert, chain = pkcs12.load_key_and_certificates(data, password.encode("utf-8"))
    except ValueError:  # cryptography's "Invalid password or PKCS12 data": never echo the password
        raise ConfigError(f"{key} {file}: {PARSE_FAILED} (wrong password, or a damaged PKCS#12 file)") from None
    if cert is None:
        raise ConfigError(f"{key} {file}: the cert is nullptr (the PKCS#12 file holds no certificate)")
    if key_obj is None:
        raise ConfigError(f"{key} {file}: the key is nullptr (the PKCS#12 file holds no private key)")
    check_validity(cert, f"{key} {file}", now)
    return Identity(file, cert, key_obj, tuple(chain))


def check_validity(cert: x509.Certificate, where: str, now: dt.datetime | None = None) -> None:
    """Raises ConfigError naming `where` and the dates unless `cert` is valid at `now`."""
    moment = now or dt.datetime.now(dt.UTC)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    dates = f"valid from {utc(start)} to {utc(end)}, now {utc(moment)}"
    if moment < start:
        raise ConfigError(f"{where}: {TIME_FAILED} The certificate is not valid yet: {dates}")
    if moment > end:
        raise ConfigError(f"{where}: {TIME_FAILED} The certificate has expired: {dates}")


def utc(moment: dt.datetime) -> str:
    """`moment` as "2026-01-31 12:00:00 UTC"."""
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def subject_name(cert: x509.Certificate) -> str:
    """The certificate's subject as OpenSSL prints it (CN=..., O=...)."""
    return cert.subject.rfc4514_string()
