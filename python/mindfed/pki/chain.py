"""The certificate chain of a pki_verify device (spec §10.2, MindSpore's cert_verify.cc):

    key_attestation ← equip_cert ← equip_ca_cert ← root_first_ca | root_second_ca

checked as MindSpore checks it (validity with notBefore up to 600 s ahead, issuer CN == CA subject CN, CA
basicConstraints and keyCertSign on the equipment CA, subject/authority key ids, signatures) plus two things it does
not do: every link's full issuer name must equal its CA's subject, and the equipment CRL is really enforced (MindSpore
refuses only when the CRL's signature verifies with the device's own key, which never happens).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import NameOID

from mindfed.errors import ConfigError

logger = logging.getLogger(__name__)
NOT_BEFORE_SLACK = dt.timedelta(seconds=600)  # certStartTimeDiff: a device clock may run up to 10 minutes ahead


class ChainError(Exception):
    """A device's chain is refused; the message says which check failed (logged, never sent to the device)."""


def fl_id_of(equip_cert_pem: str) -> str:
    """The fl_id of a pki device: lowercase hex SHA-256 of its equipment certificate's PEM string, as sent."""
    return hashlib.sha256(equip_cert_pem.encode()).hexdigest()


def _load_pem_file(path: str, what: str) -> bytes:
    if not path:
        raise ConfigError(f"client_verify.{what}: required when client_verify.pki_verify is true")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"client_verify.{what}: cannot read {path!r}: {exc.strerror or exc}") from exc


def _load_root(path: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_load_pem_file(path, what))
    except ValueError as exc:
        raise ConfigError(f"client_verify.{what}: {path!r} is not a PEM certificate: {exc}") from exc


def _load_crls(path: str) -> list[x509.CertificateRevocationList]:
    """Every PEM CRL in `path`; a missing file warns (as MindSpore), an unreadable one is a start-up error."""
    if not path:
        return []
    if not Path(path).exists():
        logger.warning("client_verify.equip_crl_path %r does not exist: no equipment certificate is revoked", path)
        return []
    data = _load_pem_file(path, "equip_crl_path")
    marker = b"-----BEGIN X509 CRL-----"
    blocks = [marker + part for part in data.split(marker)[1:]]
    if not blocks:
        raise ConfigError(f"client_verify.equip_crl_path: {path!r} holds no PEM CRL")
    try:
        return [x509.load_pem_x509_crl(block) for block in blocks]
    except ValueError as exc:
        raise ConfigError(f"client_verify.equip_crl_path: {path!r} is not a PEM CRL: {exc}") from exc


@dataclass(slots=True)
class TrustAnchors:
    """The two roots and the equipment CRLs a server trusts; the CRL file is re-read when it changes."""

    roots: tuple[x509.Certificate, ...]
    crl_path: str = ""
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    _crl_mtime_ns: int = 0

    @classmethod
    def load(cls, root_first_ca_path: str, root_second_ca_path: str, equip_crl_path: str = "") -> TrustAnchors:
        """MindSpore's initRootCertAndCRL: both roots must exist.

        Raises:
            ConfigError: naming the key and the file when a root is missing or unreadable, or the CRL unreadable.
        """
        roots = (_load_root(root_first_ca_path, "root_first_ca_path"),
                 _load_root(root_second_ca_path, "root_second_ca_path"))
        anchors = cls(roots, equip_crl_path)
        anchors.crls = _load_crls(equip_crl_path)
        anchors._crl_mtime_ns = _mtime_ns(equip_crl_path)
        return anchors

    def refresh_crl(self) -> None:
        """Re-read the CRL file if it was replaced; a broken new file keeps the old list (and says so)."""
        mtime = _mtime_ns(self.crl_path)
        if mtime == self._crl_mtime_ns:
            return
        try:
            self.crls = _load_crls(self.crl_path)
        except ConfigError as exc:
            logger.error("equipment CRL not reloaded, the previous one stays in force: %s", exc)
        self._crl_mtime_ns = mtime

    def revoked(self, issuer: x509.Certificate, cert: x509.Certificate) -> bool:
        """Whether a CRL issued (and signed) by `issuer` lists `cert`. A CRL naming `issuer` whose signature does
        not verify revokes everything it would speak for: a forged or broken CRL fails closed."""
        for crl in self.crls:
            if crl.issuer != issuer.subject:
                continue
            try:
                valid = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, UnsupportedAlgorithm):
                valid = False
            if not valid or crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                return True
        return False


def _mtime_ns(path: str) -> int:
    try:
        return Path(path).stat().st_mtime_ns if path else 0
    except OSError:
        return 0


def _parse(pem: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ChainError(f"{what} is not a PEM certificate") from exc


def _check_time(cert: x509.Certificate, what: str, now: dt.datetime) -> None:
    if cert.not_valid_before_utc - NOT_BEFORE_SLACK > now:
        raise ChainError(f"{what} is not valid before {cert.not_valid_before_utc.isoformat()}")
    if cert.not_valid_after_utc < now:
        raise ChainError(f"{what} expired on {cert.not_valid_after_utc.isoformat()}")


def _cn(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def _issued_by(ca: x509.Certificate, cert: x509.Certificate) -> bool:
    """Names (CN as MindSpore, and the whole name) and the signature."""
    cn = _cn(ca.subject)
    if cn is None or cn != _cn(cert.issuer) or ca.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _key_ids_chain(ca: x509.Certificate, cert: x509.Certificate) -> bool:
    try:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return False
    return aki is not None and aki == ski


def _is_signing_ca(cert: x509.Certificate) -> bool:
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        cert_sign = cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    except x509.ExtensionNotFound:
        return False
    return ca and cert_sign


def verify_chain(anchors: TrustAnchors, key_attestation: str, equip_cert: str, equip_ca_cert: str,
                 now: dt.datetime | None = None) -> None:
    """Check a device's chain up to one of the roots, and the CRL.

    Raises:
        ChainError: the first check that failed (malformed PEM included).
    """
    now = now or dt.datetime.now(dt.UTC)
    leaf = _parse(key_attestation, "key_attestation")
    equip = _parse(equip_cert, "equip_cert")
    equip_ca = _parse(equip_ca_cert, "equip_ca_cert")
    for cert, what in ((leaf, "key_attestation"), (equip, "equip_cert"), (equip_ca, "equip_ca_cert")):
        _check_time(cert, what, now)
    if not _is_signing_ca(equip_ca):
        raise ChainError("equip_ca_cert is not a CA with keyCertSign")
    root = next((r for r in anchors.roots if _key_ids_chain(r, equip_ca) and _issued_by(r, equip_ca)), None)
    if root is None:
        raise ChainError("equip_ca_cert is not issued by a trusted root")
    if not (_key_ids_chain(equip_ca, equip) and _issued_by(equip_ca, equip)):
        raise ChainError("equip_cert is not issued by equip_ca_cert")
    if not _issued_by(equip, leaf):
        raise ChainError("key_attestation is not issued by equip_cert")
    anchors.refresh_crl()
    if anchors.revoked(equip_ca, equip) or anchors.revoked(root, equip_ca):
        raise ChainError("equip_cert or equip_ca_cert is revoked")
