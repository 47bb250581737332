"""Throwaway device PKI for pki_verify (spec §10.2): two roots, an equipment CA under the second, equipment
certificates and key attestations, and the equipment CRL; for `mindfed certs` and the tests. Never for production.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mindfed development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Issuer:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def issue(subject: str, key: rsa.RSAPrivateKey, issuer: Issuer | None, *, ca: bool, cert_sign: bool | None = None,
          not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
          key_ids: bool = True) -> x509.Certificate:
    """A certificate for `key` signed by `issuer` (self-signed if None), with the extensions MindSpore's chain check
    looks at: basicConstraints, keyUsage (keyCertSign on CAs), subject/authority key ids."""
    now = dt.datetime.now(dt.UTC)
    signer_name = issuer.cert.subject if issuer else _name(subject)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(signer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or now - dt.timedelta(days=1))
               .not_valid_after(not_after or now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    sign_certs = ca if cert_sign is None else cert_sign
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=sign_certs, crl_sign=ca, encipher_only=False, decipher_only=False),
        critical=True)
    if key_ids:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        signer_key = issuer.key if issuer else key
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False)
    return builder.sign(issuer.key if issuer else key, hashes.SHA256())


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def write_crl(path: Path, ca: Issuer, revoked_serials: list[int] = []) -> Path:  # noqa: B006 - never mutated
    """The CRL of `ca` listing `revoked_serials`, valid for a day."""
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
               .last_update(now - dt.timedelta(minutes=1)).next_update(now + dt.timedelta(days=1)))
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
    path.write_bytes(builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return path


@dataclass(frozen=True)
class DevDevicePki:
    """The files `write_device_pki` made (paths as str, as the YAML takes them)."""

    root_first_ca_path: str
    root_second_ca_path: str
    equip_crl_path: str
    device_dir: str

    def yaml_overrides(self) -> dict[str, object]:
        return {"client_verify.pki_verify": True, "client_verify.root_first_ca_path": self.root_first_ca_path,
                "client_verify.root_second_ca_path": self.root_second_ca_path,
                "client_verify.equip_crl_path": self.equip_crl_path}


def write_device_pki(directory: Path, days: int = 365) -> DevDevicePki:
    """Roots, equipment CA, an empty CRL and one device (equip_cert.pem, equip_ca.pem, key_attestation.pem and the
    attestation's private key, key_attestation.key, 0600) under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    roots = []
    for cn in ("mindfed dev root CA", "mindfed dev root CA G2"):
        key = new_key()
        roots.append(Issuer(issue(cn, key, None, ca=True, not_after=until), key))
    key = new_key()
    equip_ca = Issuer(issue("mindfed dev equipment CA", key, roots[1], ca=True, not_after=until), key)
    first = directory / "root_first_ca.pem"
    first.write_text(pem(roots[0].cert))
    second = directory / "root_second_ca.pem"
    second.write_text(pem(roots[1].cert))
    crl = write_crl(directory / "equip_crl.pem", equip_ca)
    device = directory / "device"
    device.mkdir(exist_ok=True)
    equip_key, attest_key = new_key(), new_key()
    equip = issue("mindfed dev device", equip_key, equip_ca, ca=False, not_after=until)
    attestation = issue("mindfed dev key attestation", attest_key, Issuer(equip, equip_key), ca=False,
                        not_after=until, key_ids=False)
    (device / "equip_cert.pem").write_text(pem(equip))
    (device / "equip_ca.pem").write_text(pem(equip_ca.cert))
    (device / "key_attestation.pem").write_text(pem(attestation))
    secret = device / "key_attestation.key"
    secret.touch(mode=0o600)
    secret.write_bytes(attest_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return DevDevicePki(str(first), str(second), str(crl), str(device))
