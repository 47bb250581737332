"""Certificates for pki_verify tests, made with `cryptography`: two roots, an equipment CA under the second, a root
nobody trusts with its own equipment CA, and per-device equipment certificates and key attestations. Keys come from
a small pool (RSA key generation dominates the cost); every certificate has its own serial, so its own fl_id."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mindfed.client.pki import DeviceIdentity
from mindfed.pki.dev_chain import Issuer, issue, pem

_POOL: dict[int, list[rsa.RSAPrivateKey]] = {}
_counter = itertools.count()


def pool_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    keys = _POOL.setdefault(bits, [])
    if len(keys) < 3:
        keys.append(rsa.generate_private_key(public_exponent=65537, key_size=bits))
        return keys[-1]
    return keys[next(_counter) % len(keys)]


class DevicePki:
    """The PKI of a test run, with its root CA and CRL files under `directory`."""

    def __init__(self, directory: Path, bits: int = 2048) -> None:
        self.dir = directory
        self.bits = bits
        self.roots = []
        for cn in ("Test Root CA", "Test Root CA G2", "Untrusted Root CA"):
            key = pool_key(bits)
            self.roots.append(Issuer(issue(cn, key, None, ca=True), key))
        key = pool_key(bits)
        self.equip_ca = Issuer(issue("Test Equipment CA", key, self.roots[1], ca=True), key)
        key = pool_key(bits)
        self.rogue_ca = Issuer(issue("Test Equipment CA", key, self.roots[2], ca=True), key)
        self.root_first_ca_path = self._write("root_first.pem", pem(self.roots[0].cert))
        self.root_second_ca_path = self._write("root_second.pem", pem(self.roots[1].cert))
        self.crl_path = str(directory / "equip_crl.pem")
        self.revoke()  # an empty CRL, signed by the equipment CA

    def _write(self, name: str, text: str) -> str:
        path = self.dir / name
        path.write_text(text)
        return str(path)

    def overrides(self, window_ms: int = 600000) -> dict[str, object]:
        """The client_verify keys of a server trusting this PKI."""
        return {"client_verify.pki_verify": True, "client_verify.root_first_ca_path": self.root_first_ca_path,
                "client_verify.root_second_ca_path": self.root_second_ca_path,
                "client_verify.equip_crl_path": self.crl_path, "client_verify.replay_attack_time_diff": window_ms}

    def device(self, ca: Issuer | None = None, **equip_kw: object) -> DeviceIdentity:
        """A device: equipment certificate from `ca` (default: the trusted equipment CA), key attestation under it."""
        ca = ca or self.equip_ca
        equip_key, attest_key = pool_key(self.bits), pool_key(self.bits)
        serial = next(_counter)
        equip = issue(f"device {serial}", equip_key, ca, ca=False, **equip_kw)  # type: ignore[arg-type]
        attestation = issue(f"key attestation {serial}", attest_key, Issuer(equip, equip_key), ca=False,
                            key_ids=False)
        return DeviceIdentity(attest_key, pem(attestation), pem(equip), pem(ca.cert))

    def revoke(self, *devices: DeviceIdentity, signer: Issuer | None = None) -> None:
        """(Re)write the CRL of the equipment CA listing `devices`' equipment certificates."""
        signer = signer or self.equip_ca
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.equip_ca.cert.subject)
                   .last_update(now - dt.timedelta(minutes=1)).next_update(now + dt.timedelta(days=1)))
        for device in devices:
            serial = x509.load_pem_x509_certificate(device.equip_cert.encode()).serial_number
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
        crl = builder.sign(signer.key, hashes.SHA256())
        Path(self.crl_path).write_bytes(crl.public_bytes(serialization.Encoding.PEM))
