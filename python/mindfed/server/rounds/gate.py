"""Plain-text gating before any round runs (spec §3.3), in MindSpore's order."""

from __future__ import annotations

from mindfed.cache.store import DISABLED, FINISHED
from mindfed.protocol.plain_text import TEXT_JOB_NOT_AVAILABLE, TEXT_SAFEMODE
from mindfed.server.state import ServerState

# Rounds a device may still call once training is finished, and while Redis is away (they need no Redis).
READ_ONLY_ROUNDS = frozenset({"getModel", "getResult"})


def refusal(state: ServerState, round_name: str) -> str | None:
    """The plain text that turns this request away, or None when the round may run."""
    if state.stopping:
        return TEXT_JOB_NOT_AVAILABLE
    if state.running_state == FINISHED and round_name in READ_ONLY_ROUNDS:
        return None
    if state.running_state in (DISABLED, FINISHED):
        return TEXT_JOB_NOT_AVAILABLE
    if state.safemode:
        # A late update for the iteration that just succeeded is told "enough" by its handler (no Redis needed),
        # as MindSpore tells it until its switch, which starts up to a second later than ours.
        late_update_possible = round_name == "updateModel" and state.phase.completed is not None
        return None if late_update_possible else TEXT_SAFEMODE
    if not state.cache_ok and round_name not in READ_ONLY_ROUNDS:
        return TEXT_SAFEMODE
    return None
