"""Throwaway development certificates: a CA, server and client PKCS#12 files (the demo, tests and benchmarks).

Never for production: the CA key lives in memory or next to the files, the passwords are random per call unless
given. The server and client certificates carry SAN 127.0.0.1 / localhost and both serverAuth and clientAuth
(the node transport uses the same files for mutual TLS), as MindSpore's `generate_certs.sh` makes them.
Keys are ECDSA P-256 (fast to make; accepted at OpenSSL security level 3).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = dt.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mindfed development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class DevCA:
    """A development certificate authority."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str = "mindfed dev CA", days: int = 3650) -> DevCA:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        public = key.public_key()
        cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
                .public_key(public).serial_number(x509.random_serial_number())
                .not_valid_before(now - DAY).not_valid_after(now + days * DAY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    def issue(self, common_name: str, not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A leaf certificate (server and client use) for 127.0.0.1/localhost; default validity: a year from
        yesterday."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        san = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                           x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(not_before or now - DAY).not_valid_after(not_after or now + 365 * DAY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(san, critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        return cert, key

    def write_ca(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def write_p12(self, path: Path, password: str, common_name: str, not_before: dt.datetime | None = None,
                  not_after: dt.datetime | None = None) -> Path:
        """A PKCS#12 file with a new leaf certificate, its key and this CA, encrypted with `password`
        (written to a temporary name first, then renamed: a watcher never sees half a file)."""
        cert, key = self.issue(common_name, not_before, not_after)
        data = pkcs12.serialize_key_and_certificates(common_name.encode(), key, cert, [self.cert],
                                                     serialization.BestAvailableEncryption(password.encode()))
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path


@dataclass(frozen=True)
class DevCertSet:
    """The files of `write_dev_certs` and their passwords (the caller hands these to the processes)."""

    ca: DevCA
    ca_cert_path: Path
    server_cert_path: Path
    client_cert_path: Path
    server_password: str
    client_password: str

    def yaml_overrides(self) -> dict[str, object]:
        """The dotted YAML keys that turn TLS on with these files."""
        return {"enable_ssl": True, "ssl.server_cert_path": str(self.server_cert_path),
                "ssl.client_cert_path": str(self.client_cert_path), "ssl.ca_cert_path": str(self.ca_cert_path)}


def write_dev_certs(directory: str | Path, server_password: str = "", client_password: str = "") -> DevCertSet:
    """ca.crt, server.p12 and client.p12 in `directory` (made if missing), with random passwords unless given."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca = DevCA.create()
    server_password = server_password or secrets.token_urlsafe(18)
    client_password = client_password or secrets.token_urlsafe(18)
    return DevCertSet(ca, ca.write_ca(out / "ca.crt"),
                      ca.write_p12(out / "server.p12", server_password, "mindfed server"),
                      ca.write_p12(out / "client.p12", client_password, "mindfed client"),
                      server_password, client_password)
