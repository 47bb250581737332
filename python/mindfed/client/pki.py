"""A pki_verify device's identity (spec §10.2): its key-attestation key and certificate chain, and the signatures
every request carries. The private key stays in this object; it is never logged or shown in a repr.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from mindfed.pki import exchange_keys_data, fl_id_of, round_data, sign_pss, start_fl_job_data


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """What a Huawei device's keystore holds, as PEM strings, and the key that signs.

    Attributes:
        private_key: the RSA key whose certificate is `key_attestation`.
        key_attestation: PEM, issued by `equip_cert`.
        equip_cert: PEM, issued by `equip_ca_cert`; its SHA-256 is the device's fl_id.
        equip_ca_cert: PEM, issued by one of the server's two roots.
        root_cert: optional PEM of the root (sent, never trusted by the server).
    """

    private_key: rsa.RSAPrivateKey = field(repr=False)
    key_attestation: str
    equip_cert: str
    equip_ca_cert: str
    root_cert: str = ""

    @property
    def fl_id(self) -> str:
        return fl_id_of(self.equip_cert)

    def sign(self, data: bytes) -> bytes:
        return sign_pss(self.private_key, data)

    def fl_job_fields(self, fl_id: str, timestamp: str) -> dict[str, object]:
        """The pki fields of a startFLJob (build_request_fl_job keywords)."""
        return {"sign_data": self.sign(start_fl_job_data(fl_id, timestamp)), "key_attestation": self.key_attestation,
                "equip_cert": self.equip_cert, "equip_ca_cert": self.equip_ca_cert,
                "root_cert": self.root_cert or None}

    def round_signature(self, timestamp: str, iteration: int) -> bytes:
        """The signature of every round after startFLJob: timestamp ‖ str(iteration)."""
        return self.sign(round_data(timestamp, iteration))

    def exchange_keys_signature(self, c_pk: bytes, s_pk: bytes, timestamp: str, iteration: int) -> bytes:
        return self.sign(exchange_keys_data(c_pk, s_pk, timestamp, iteration))

    def chain(self) -> list[str]:
        """certificate_chain of exchangeKeys: attestation first, as the device's keystore returns it."""
        return [self.key_attestation, self.equip_cert, self.equip_ca_cert]


def client_list_data(clients: Sequence[str]) -> bytes:
    """What pushListSign's `signature` covers: the client list getClientList returned, concatenated in its order."""
    return "".join(clients).encode()
