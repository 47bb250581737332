"""What every PW_ENCRYPT round handler needs: the iteration's PwCache, the thresholds, MindSpore's timestamps."""

from __future__ import annotations

from dataclasses import dataclass

from mindfed.cache.secagg import PwCache
from mindfed.secagg.thresholds import PwThresholds, pw_thresholds
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

    def later(self) -> str:
        """For OutOfTime answers: the end of the iteration's windows, never the past (Java aborts on a past
        next_req_time, where MindSpore sends the current time on several of these paths)."""
        return str(self.state.next_req_time_ms())
