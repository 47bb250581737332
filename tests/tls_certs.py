"""Test PKI for mutual TLS, made with the `cryptography` package: a CA, node certificates in PKCS#12, a CRL.

`Pki(tmp_path / "a")` is one CA; `pki.p12("node1", "pw")` issues a certificate (SAN 127.0.0.1) and writes it with its
key to node1.p12; `pki.crl([cert])` writes a CRL revoking those certificates. A second `Pki` is a foreign CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from mindfed import _core

SERVER_PASSWORD = "server_password_12345"  # MindSpore's test passwords (tests/ut/python/generate_certs.sh)
CLIENT_PASSWORD = "client_password_12345"
CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class NodeCerts:
    server_p12: Path
    client_p12: Path
    certs: list[x509.Certificate]  # [server, client]
    options: _core.net.TlsOptions


class Pki:
    """One certificate authority writing its files under `directory`."""

    def __init__(self, directory: Path, name: str = "mindfed test CA") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                     .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), False)
                     .sign(self._key, hashes.SHA256()))
        self.ca_path = directory / "ca.pem"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, cn: str, *, days: int = 30) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False)
                .sign(self._key, hashes.SHA256()))
        return key, cert

    def p12(self, cn: str, password: str) -> tuple[Path, x509.Certificate]:
        """A new certificate for `cn` with its key in `<cn>.p12` under `password`."""
        key, cert = self.issue(cn)
        path = self.dir / f"{cn}.p12"
        path.write_bytes(pkcs12.serialize_key_and_certificates(
            cn.encode(), key, cert, None, serialization.BestAvailableEncryption(password.encode())))
        return path, cert

    def crl(self, revoked: list[x509.Certificate], name: str = "crl.pem") -> Path:
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=7)))
        for cert in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build())
        path = self.dir / name
        path.write_bytes(builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        return path

    def node(self, cn: str, *, crl: Path | None = None, ca: Path | None = None) -> NodeCerts:
        """A node `cn`: its own server.p12 / client.p12, verifying peers with this CA (or `ca`) and the CRL if any."""
        server, server_cert = self.p12(f"{cn}-server", SERVER_PASSWORD)
        client, client_cert = self.p12(f"{cn}-client", CLIENT_PASSWORD)
        return NodeCerts(server, client, [server_cert, client_cert], self.options(server, client, ca or self.ca_path,
                                                                                   crl))

    @staticmethod
    def options(server: Path, client: Path, ca: Path, crl: Path | None = None) -> _core.net.TlsOptions:
        return _core.net.TlsOptions(server_cert_path=str(server), server_password=SERVER_PASSWORD,
                                    client_cert_path=str(client), client_password=CLIENT_PASSWORD,
                                    ca_cert_path=str(ca), crl_path=str(crl or ""),
                                    cipher_list=CIPHERS)
