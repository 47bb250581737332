"""Redis operations of PW_ENCRYPT (spec §7.1): every step of the protocol is one atomic script, and everything a
server needs to answer any device at any step, or to unmask the aggregate, is read back from here.

Binary values (keys, encrypted and revealed shares) go through the store's bytes client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mindfed.cache.iteration import IterationCache
from mindfed.secagg.thresholds import GET_CLIENT_LIST, GET_KEYS, SHARE_SECRETS
from mindfed.secagg.wire import DeviceKeys, RevealedShare, pack_revealed, unpack_inbox_entry, unpack_revealed

# Codes of the scripts (scripts/pw_*.lua).
STORED, ENOUGH, ALREADY, NOT_MEMBER, BAD_ADDRESSEE, CHECKED = 0, 1, 2, 3, 4, 5
NOT_READY = 1  # pw_join: the previous round has not reached its threshold


@dataclass(frozen=True, slots=True)
class UnmaskInputs:
    """What the aggregator needs to remove the masks: every device's keys, who shared, who uploaded, and the
    shares the reconstructing devices revealed (reconstructor → its shares)."""

    keys: dict[str, DeviceKeys]
    shared: set[str]
    uploaded: set[str]
    revealed: dict[str, list[RevealedShare]]


class PwCache:
    """The PW_ENCRYPT state of one iteration."""

    def __init__(self, cache: IterationCache, ttl_s: int) -> None:
        self._c = cache
        self._store = cache.store
        self.keys = cache.keys
        self._ttl_s = ttl_s

    async def exchange_keys(self, fl_id: str, keys: DeviceKeys | None, threshold: int, now_ms: int
                            ) -> tuple[int, int]:
        """Store `fl_id`'s keys; with `keys` None only the threshold is checked (code CHECKED or ENOUGH)."""
        code, count = await self._store.run("pw exchange keys", self._store.script("pw_exchange_keys")(
            keys=[self.keys.counts, self.keys.device_metas, self.keys.pw_keys, self.keys.timers],
            args=[threshold, fl_id, b"" if keys is None else keys.pack(), now_ms, self._ttl_s,
                  "1" if keys is None else "0"]))
        return int(code), int(count)

    async def join(self, round_name: str, fl_id: str, before: str, before_threshold: int, member_of: str,
                   threshold: int, now_ms: int) -> tuple[int, int]:
        """A polling round: `before` must have reached `before_threshold`, `fl_id` be in `member_of`."""
        code, count = await self._store.run(f"pw {round_name}", self._store.script("pw_join")(
            keys=[self.keys.counts, member_of, self.keys.pw_clients(round_name), self.keys.timers],
            args=[before, before_threshold, fl_id, round_name, threshold, now_ms, self._ttl_s]))
        return int(code), int(count)

    async def share_secrets(self, fl_id: str, shares: list[tuple[str, bytes]] | None, threshold: int,
                            now_ms: int) -> tuple[int, int]:
        """Deliver `fl_id`'s encrypted shares (addressee, stored bytes); None checks the threshold only."""
        pairs = shares or []
        args: list[Any] = [threshold, fl_id, now_ms, self._ttl_s, "1" if shares is None else "0"]
        for to, value in pairs:
            args += [to, value]
        code, count = await self._store.run("pw share secrets", self._store.script("pw_share_secrets")(
            keys=[self.keys.counts, self.keys.pw_clients(GET_KEYS), self.keys.pw_clients(SHARE_SECRETS),
                  self.keys.timers, self.keys.pw_keys, *(self.keys.pw_inbox(to) for to, _ in pairs)],
            args=args))
        return int(code), int(count)

    async def reconstruct(self, fl_id: str, shares: list[RevealedShare], threshold: int, now_ms: int
                          ) -> tuple[int, int, bool]:
        code, count, uploaded = await self._store.run("pw reconstruct", self._store.script("pw_reconstruct")(
            keys=[self.keys.counts, self.keys.pw_clients(GET_CLIENT_LIST), self.keys.update_model_clients,
                  self.keys.pw_reconstruct, self.keys.timers],
            args=[threshold, fl_id, pack_revealed(shares), now_ms, self._ttl_s]))
        return int(code), int(count), bool(uploaded)

    async def all_keys(self) -> dict[str, DeviceKeys]:
        raw: dict[bytes, bytes] = await self._store.run("pw read keys", self._store.binary.hgetall(self.keys.pw_keys))  # type: ignore[arg-type]
        return {k.decode(): DeviceKeys.unpack(v) for k, v in raw.items()}

    async def inbox(self, fl_id: str) -> list[tuple[str, int, bytes]]:
        """(source, index, ciphertext) of every share addressed to `fl_id`, sorted by source."""
        raw: dict[bytes, bytes] = await self._store.run("pw read inbox",
                                                        self._store.binary.hgetall(self.keys.pw_inbox(fl_id)))  # type: ignore[arg-type]
        return sorted((k.decode(), *unpack_inbox_entry(v)) for k, v in raw.items())

    async def uploaded(self) -> set[str]:
        members: set[str] = await self._store.run("pw read uploaders", self._store.redis.smembers(
            self.keys.update_model_clients))  # type: ignore[arg-type]
        return set(members)

    async def unmask_inputs(self) -> UnmaskInputs:
        r = self._store.binary
        async with r.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.pw_keys)
            pipe.smembers(self.keys.pw_clients(SHARE_SECRETS))
            pipe.smembers(self.keys.update_model_clients)
            pipe.hgetall(self.keys.pw_reconstruct)
            keys, shared, uploaded, revealed = await self._store.run("pw read unmask inputs", pipe.execute())
        return UnmaskInputs(
            keys={k.decode(): DeviceKeys.unpack(v) for k, v in keys.items()},
            shared={s.decode() for s in shared}, uploaded={s.decode() for s in uploaded},
            revealed={k.decode(): unpack_revealed(v) for k, v in revealed.items()})
