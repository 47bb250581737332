"""Redis state of pki_verify (spec §10.2, §7.2): the key attestations startFLJob stores (so any server verifies any
later round), the replay guard on accepted signatures, the client-list signatures of pushListSign/getListSign and
the exchangeKeys signatures getKeys hands on.

The replay guard is one `SET NX PX` per accepted signature, keyed by its SHA-256 and expiring when the request's
timestamp leaves the window: atomic across servers, and memory bounded by the requests of one window.
"""

from __future__ import annotations

import hashlib
import json

from mindfed.cache.iteration import IterationCache

# Codes of scripts/pw_push_list_sign.lua and pw_get_list_sign.lua.
STORED, ENOUGH, ALREADY, NOT_MEMBER = 0, 1, 2, 3
NOT_READY = 1  # pw_get_list_sign: fewer than P signatures stored
REPLAY_SLACK_MS = 1000  # the guard outlives the window a little: clocks of servers differ by this much


class PkiCache:
    """The pki_verify state of one iteration, and the job-wide replay guard."""

    def __init__(self, cache: IterationCache, ttl_s: int) -> None:
        self._store = cache.store
        self.keys = cache.keys
        self._ttl_s = ttl_s

    async def store_key_attestation(self, fl_id: str, pem: str) -> bool:
        """HSETNX, as MindSpore; storing the same PEM again (a device retrying startFLJob) is not a failure."""
        r = self._store.redis
        async with r.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self.keys.key_attestations, fl_id, pem)
            pipe.hget(self.keys.key_attestations, fl_id)
            pipe.expire(self.keys.key_attestations, self._ttl_s)
            _, stored, _ = await self._store.run("pki store key attestation", pipe.execute())
        return bool(stored == pem)

    async def key_attestation(self, fl_id: str) -> str | None:
        value: str | None = await self._store.run("pki read key attestation", self._store.redis.hget(
            self.keys.key_attestations, fl_id))  # type: ignore[arg-type]
        return value

    async def first_use(self, signature: bytes, timestamp_ms: int, now_ms: int, window_ms: int) -> bool:
        """Record `signature` as used; False when it already was (a replay). The mark lasts until the timestamp
        leaves the window, `timestamp + window`, which is at most 2 × window from now."""
        ttl_ms = max(timestamp_ms + window_ms - now_ms, 0) + REPLAY_SLACK_MS
        key = self._store.job.replay_guard(hashlib.sha256(bytes(signature)).hexdigest())
        fresh = await self._store.run("pki replay guard", self._store.redis.set(key, "1", nx=True, px=ttl_ms))
        return bool(fresh)

    async def push_list_sign(self, fl_id: str, signature: bytes, threshold: int, now_ms: int
                             ) -> tuple[int, int, bool]:
        code, count, uploaded = await self._store.run("pki push list sign", self._store.script("pw_push_list_sign")(
            keys=[self.keys.counts, self.keys.pw_clients("getClientList"), self.keys.update_model_clients,
                  self.keys.list_signatures, self.keys.timers],
            args=[threshold, fl_id, bytes(signature), now_ms, self._ttl_s]))
        return int(code), int(count), bool(uploaded)

    async def get_list_sign(self, fl_id: str, pushed_needed: int, threshold: int, now_ms: int) -> tuple[int, bool]:
        code, uploaded = await self._store.run("pki get list sign", self._store.script("pw_get_list_sign")(
            keys=[self.keys.counts, self.keys.list_signatures, self.keys.update_model_clients,
                  self.keys.pw_clients("getListSign"), self.keys.timers],
            args=[pushed_needed, fl_id, threshold, now_ms, self._ttl_s]))
        return int(code), bool(uploaded)

    async def list_signatures(self) -> dict[str, bytes]:
        raw: dict[bytes, bytes] = await self._store.run("pki read list signatures", self._store.binary.hgetall(
            self.keys.list_signatures))  # type: ignore[arg-type]
        return {k.decode(): bytes(v) for k, v in raw.items()}

    async def store_key_signature(self, fl_id: str, timestamp: str, iteration: int, signature: bytes,
                                  chain: list[str]) -> None:
        """What a peer needs to check fl_id's exchangeKeys: kept once (HSETNX), like the keys themselves."""
        value = json.dumps({"timestamp": timestamp, "iteration": iteration, "signature": bytes(signature).hex(),
                            "certificate_chain": chain})
        r = self._store.redis
        async with r.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self.keys.key_signatures, fl_id, value)
            pipe.expire(self.keys.key_signatures, self._ttl_s)
            await self._store.run("pki store key signature", pipe.execute())

    async def key_signatures(self) -> dict[str, dict[str, object]]:
        """fl_id → {timestamp, iteration, signature (bytes), certificate_chain} of every exchangeKeys kept."""
        raw: dict[str, str] = await self._store.run("pki read key signatures", self._store.redis.hgetall(
            self.keys.key_signatures))  # type: ignore[arg-type]
        out: dict[str, dict[str, object]] = {}
        for fl_id, text in raw.items():
            entry = json.loads(text)
            entry["signature"] = bytes.fromhex(entry["signature"])
            out[fl_id] = entry
        return out
