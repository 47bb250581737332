"""What every PW_ENCRYPT round handler needs: the iteration's PwCache, the thresholds, MindSpore's timestamps."""

from __future__ import annotations

from dataclasses import dataclass

from mindfed.cache.secagg import PwCache
from mindfed.protocol import tables
from mindfed.protocol.codes import ResponseCode
from mindfed.secagg.thresholds import PwThresholds, pw_thresholds
from mindfed.server.rounds.reply import RoundReply
from mindfed.server.state import ServerState, now_ms


@dataclass(frozen=True, slots=True)
class PwRound:
    """One request's view of the protocol state: `pw` for the server's current iteration."""

    state: ServerState
    pw: PwCache
    th: PwThresholds

    @classmethod
    def of(cls, state: ServerState) -> PwRound:
        return cls(state, PwCache(state.cache(), state.ttl.iteration_s), pw_thresholds(state.config))

    @property
    def iteration(self) -> int:
        return self.state.iteration

    @staticmethod
    def now() -> str:
        """Cipher rounds put the current time in next_req_time (spec §3.4)."""
        return str(now_ms())

    def reply(self, table: str, code: ResponseCode, reason: str | None = None, *, next_req_time: str = "",
              iteration: int | None = None, **fields: object) -> RoundReply:
        """A response table of a cipher round: retcode, the reason (for the tables that have one), the iteration
        (the server's unless a late caller's), next_req_time (now unless given) and `fields` that are not None."""
        values: dict[str, object] = {"retcode": int(code), "next_req_time": next_req_time or self.now(),
                                     "iteration": self.iteration if iteration is None else iteration,
                                     **{k: v for k, v in fields.items() if v is not None}}
        if reason is not None:
            values["reason"] = reason
        return RoundReply(tables.encode(table, values), accepted=code == ResponseCode.SUCCEED)

    def later(self) -> str:
        """For OutOfTime answers: the end of the iteration's windows, never the past (Java aborts on a past
        next_req_time, where MindSpore sends the current time on several of these paths)."""
        return str(self.state.next_req_time_ms())
