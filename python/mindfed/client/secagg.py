"""The device side of PW_ENCRYPT (spec §3.6, §7.1), as MindSpore's Java client does it (CipherClient.java):

    exchangeKeys → poll getKeys → shareSecrets → poll getSecrets → (train, mask) → updateModel
    → poll getClientList → [pki_verify: pushListSign → poll getListSign] → reconstructSecrets

One `PwSession` per device and iteration. Keys, seeds and shares live only in the session (never logged). Masks
are added to every tensor from mask offset 0, as the Java client does (mindspore-java-client-pw-facts.md, 1), so
our server treats SDK and Java devices alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from mindfed import _core
from mindfed.client.device import DeviceClient, PlainText, now_ms
from mindfed.client.pki import client_list_data
from mindfed.errors import ProtocolError
from mindfed.protocol.codes import ResponseCode
from mindfed.secagg import ring
from mindfed.secagg.wire import IV_BYTES, SALT_BYTES, DeviceKeys, SharePlaintext, java_less

logger = logging.getLogger(__name__)
_RETRY_TEXTS = frozenset({"safemode", "not_ready", "inner_error"})
KDF_ITERATIONS = 10_000


class PwAborted(Exception):
    """The server ended this device's part in the iteration (OutOfTime, RequestError, ...): `reason` says why."""

    def __init__(self, round_name: str, reason: str, retcode: int | None = None) -> None:
        super().__init__(f"{round_name}: {reason}")
        self.round_name = round_name
        self.retcode = retcode


@dataclass(slots=True)
class PwSession:
    """One device's secure-aggregation state for one iteration.

    Args:
        client: the device's protocol client.
        iteration: the iteration startFLJob admitted it to.
        t: PWParams.t (shares needed to rebuild a secret).
        prime: PWParams.prime (33 bytes, big-endian).
    """

    client: DeviceClient
    iteration: int
    t: int
    prime: bytes
    _c_sk: bytes = b""
    _s_sk: bytes = b""
    _b_u: bytes = b""
    _mine: DeviceKeys | None = None
    _peers: dict[str, DeviceKeys] = field(default_factory=dict)  # getKeys order, self included
    _received: dict[str, SharePlaintext] = field(default_factory=dict)  # source → its shares for us

    @property
    def fl_id(self) -> str:
        return self.client.fl_id

    def _request(self, signature_field: str = "signature", **values: object) -> dict[str, object]:
        """A request of this device; a pki device signs timestamp ‖ iteration (`signature_field`)."""
        stamp = now_ms()
        signature = self.client.round_signature(stamp, self.iteration)
        signed = {} if signature is None else {signature_field: signature}
        return {"fl_id": self.fl_id, "iteration": self.iteration, "timestamp": stamp, **signed, **values}

    def _exchange_keys_request(self, mine: DeviceKeys) -> dict[str, object]:
        values = self._request(c_pk=mine.c_pk, s_pk=mine.s_pk, ind_iv=mine.ind_iv, pw_iv=mine.pw_iv,
                               pw_salt=mine.pw_salt)
        identity = self.client.identity
        if identity is not None:  # exchangeKeys signs its keys too: c_pk ‖ s_pk ‖ timestamp ‖ iteration
            values["signature"] = identity.exchange_keys_signature(mine.c_pk, mine.s_pk, str(values["timestamp"]),
                                                                   self.iteration)
            values["certificate_chain"] = identity.chain()
        return values

    async def _call(self, round_name: str, request: str,
                    values: dict[str, object] | Callable[[], dict[str, object]], response: str,
                    poll: bool, deadline_s: float) -> dict[str, object]:
        """One round: SUCCEED returns, SucNotReady polls when the Java client does (`poll`), the rest aborts.
        A callable `values` is called for every poll: a pki device signs each poll afresh (a signature is
        accepted once)."""
        async with asyncio.timeout(deadline_s):
            while True:
                body = values() if callable(values) else values
                answer = await self.client.exchange_table(round_name, request, body, response)
                if isinstance(answer, PlainText):
                    if answer.kind not in _RETRY_TEXTS:
                        raise PwAborted(round_name, answer.text)
                elif answer["retcode"] == ResponseCode.SUCCEED:
                    return answer
                elif not (poll and answer["retcode"] == ResponseCode.SucNotReady):
                    raise PwAborted(round_name, str(answer.get("reason", "")), int(answer["retcode"]))  # type: ignore[call-overload]
                await asyncio.sleep(self.client.poll_interval_s)

    async def share(self, deadline_s: float) -> None:
        """exchangeKeys, getKeys, shareSecrets, getSecrets: afterwards the masks can be computed."""
        c_sk, c_pk = _core.crypto.x25519_keypair()
        s_sk, s_pk = _core.crypto.x25519_keypair()
        self._c_sk, self._s_sk, self._b_u = c_sk, s_sk, _core.crypto.random_bytes(32)
        mine = DeviceKeys(c_pk, s_pk, _core.crypto.random_bytes(IV_BYTES), _core.crypto.random_bytes(IV_BYTES),
                          _core.crypto.random_bytes(SALT_BYTES))
        self._mine = mine
        await self._call("exchangeKeys", "RequestExchangeKeys", self._exchange_keys_request(mine),
                         "ResponseExchangeKeys", False, deadline_s)
        keys = await self._call("getKeys", "GetExchangeKeys", self._request, "ReturnExchangeKeys", True,
                                deadline_s)
        for entry in keys["remote_publickeys"]:  # type: ignore[attr-defined]
            self._peers[entry["fl_id"]] = DeviceKeys(entry["c_pk"], entry["s_pk"], bytes(IV_BYTES),
                                                     entry["pw_iv"], entry["pw_salt"])
        if self.fl_id not in self._peers or len(self._peers) < 2:
            raise PwAborted("getKeys", f"the key list ({len(self._peers)} devices) lacks this device or any peer")
        await self._call("shareSecrets", "RequestShareSecrets",
                         self._request(encrypted_shares=self._encrypted_shares()), "ResponseShareSecrets", False,
                         deadline_s)
        secrets = await self._call("getSecrets", "GetShareSecrets", self._request, "ReturnShareSecrets", True,
                                   deadline_s)
        for entry in secrets["encrypted_shares"]:  # type: ignore[attr-defined]
            source = entry["fl_id"]
            if source == self.fl_id or source not in self._peers:
                raise ProtocolError(f"getSecrets: a share from unknown device {source!r}")
            ct = entry["share"]
            key = self._channel_key(source)
            self._received[source] = SharePlaintext.unpack(
                _core.crypto.aes256_cbc_decrypt(key, ct[:IV_BYTES], ct[IV_BYTES:]))

    def _channel_key(self, peer: str) -> bytes:
        """c_uv = PBKDF2(X25519(c_sk_u, c_pk_v), empty salt): encrypts the shares between u and v."""
        return _core.crypto.pbkdf2_sha256(_core.crypto.x25519(self._c_sk, self._peers[peer].c_pk), b"",
                                          KDF_ITERATIONS, 32)

    def _encrypted_shares(self) -> list[dict[str, object]]:
        others = [fl_id for fl_id in self._peers if fl_id != self.fl_id]
        s_shares = _core.crypto.shamir_split(self._s_sk, self.t, len(others), self.prime)
        b_shares = _core.crypto.shamir_split(self._b_u, self.t, len(others), self.prime)
        out: list[dict[str, object]] = []
        for x, peer in enumerate(others, start=1):  # x = the peer's position in the key list, self skipped
            plain = SharePlaintext(x, x, s_shares[x - 1], b_shares[x - 1]).pack()
            iv = _core.crypto.random_bytes(IV_BYTES)
            out.append({"fl_id": peer, "share": iv + _core.crypto.aes256_cbc_encrypt(self._channel_key(peer), iv,
                                                                                      plain)})
        return out

    def mask(self, weights_times_n: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """w·n + PRG(b_u) + Σ_v sgn(u, v)·PRG(s_uv) per tensor, each from mask offset 0 (new arrays)."""
        masked = {name: np.array(value, dtype=np.float32).reshape(-1) for name, value in weights_times_n.items()}
        seeds, pairs = self._mask_streams()
        _core.crypto.add_masks(list(masked.values()), seeds, pairs, 0)
        return masked

    def mask_ring(self, words: np.ndarray) -> np.ndarray:
        """Secure compressed upload (secagg/ring.py): the same streams added mod 2^32 to the uint32 words, one
        stream over the whole concatenation from offset 0 (a new array)."""
        seeds, pairs = self._mask_streams()
        return ring.mask_words(words, seeds, pairs)

    def _mask_streams(self) -> tuple[list[tuple[bytes, bytes, float]], list[tuple[bytes, bytes, bytes, bytes, float]]]:
        assert self._mine is not None, "share() first"
        pairs = []
        for peer in self._received:  # the getSecrets senders, as Java's u2UClientList
            low = self._peers[peer] if java_less(peer, self.fl_id) else self._mine
            pairs.append((self._s_sk, self._peers[peer].s_pk, low.pw_salt, low.pw_iv,
                          1.0 if java_less(peer, self.fl_id) else -1.0))
        return [(self._b_u, self._mine.ind_iv, 1.0)], pairs

    async def reveal(self, deadline_s: float) -> None:
        """getClientList, then reconstructSecrets: b-shares of the uploaders, s_sk-shares of the others."""
        listed = await self._call("getClientList", "GetClientList", self._request, "ReturnClientList", True,
                                  deadline_s)
        uploaded = set(listed["clients"])  # type: ignore[call-overload]
        if self.client.identity is not None:  # pki_verify: sign the list, read everyone's (spec §7.2)
            await self._call("pushListSign", "SendClientListSign", self._request(
                "req_signature", signature=self.client.identity.sign(client_list_data(listed["clients"]))),  # type: ignore[arg-type]
                "ResponseClientListSign", False, deadline_s)
            await self._call("getListSign", "RequestAllClientListSign", self._request, "ReturnAllClientListSign",
                             True, deadline_s)
        shares = [{"fl_id": source, "share": p.b_share if source in uploaded else p.s_share,
                   "index": p.b_index if source in uploaded else p.s_index}
                  for source, p in self._received.items()]
        await self._call("reconstructSecrets", "SendReconstructSecret",
                         self._request(reconstruct_secret_shares=shares), "ReconstructSecret", False, deadline_s)
