"""The phase of this server's iteration: one explicit state, the moves it may make, each move logged once.

Only RUNNING serves rounds; every other phase answers the safemode text (spec §3.3), except that a late update for
the iteration being switched away from after its success is told "enough" (rounds/gate.py).

Three conditions that look like phases are kept apart on purpose, because they overlap with these phases:
- combining (`ServerState.completing`): a combine task runs beside the tick and may outlive, or even start during,
  the switch of its iteration; the switch reads it to decide whether to take a published aggregate back.
- stopping (`ServerState.stopping`): the tick keeps running while a server leaves, switches included (a stop that
  fails the iteration takes the switch itself), and a leaving server must keep refusing rounds throughout.
- Redis reachability (`ServerState.cache_ok`): lost and regained in any phase, by the tick or a request.
"""

from __future__ import annotations

import logging
from enum import StrEnum

logger = logging.getLogger(__name__)


class IterationPhase(StrEnum):
    """Where this server is in its iteration."""

    STARTING = "starting"  # the process has not synced with Redis yet
    RUNNING = "running"  # rounds are served
    SWITCHING = "switching"  # the local switch to the next iteration (spec §4.6)
    NEW_INSTANCE = "new_instance"  # the switch to a new instance (/newInstance, spec §6.1)
    REPUBLISHED = "republished"  # Redis lost the instance; written back from memory and failed, until the switch


_P = IterationPhase

# Every move a phase may make. REPUBLISHED may repeat: Redis can lose the instance again before the switch.
ALLOWED: dict[IterationPhase, frozenset[IterationPhase]] = {
    _P.STARTING: frozenset({_P.RUNNING}),
    _P.RUNNING: frozenset({_P.SWITCHING, _P.NEW_INSTANCE, _P.REPUBLISHED}),
    _P.SWITCHING: frozenset({_P.RUNNING}),
    _P.NEW_INSTANCE: frozenset({_P.RUNNING}),
    _P.REPUBLISHED: frozenset({_P.REPUBLISHED, _P.SWITCHING, _P.NEW_INSTANCE}),
}


class IllegalTransition(RuntimeError):
    """A move that `ALLOWED` does not list: a bug in the code that asked for it."""


class Phase:
    """The current phase and the one datum that goes with it; changed only by `enter`.

    Attributes:
        current: the phase.
        completed: while SWITCHING away from a successful iteration, that iteration (late updates for it are told
            "enough"); None otherwise.
    """

    __slots__ = ("completed", "current")

    def __init__(self) -> None:
        self.current = IterationPhase.STARTING
        self.completed: int | None = None

    @property
    def safemode(self) -> bool:
        """Whether rounds are turned away with the safemode text (every phase but RUNNING)."""
        return self.current is not IterationPhase.RUNNING

    def enter(self, new: IterationPhase, iteration: int, *, completed: int | None = None) -> None:
        """Move to `new`, logging the move once.

        Args:
            new: the phase to enter.
            iteration: the server's iteration at the move, for the log line.
            completed: with SWITCHING, the iteration being switched away from when it succeeded.

        Raises:
            IllegalTransition: `new` is not allowed after the current phase, or `completed` comes without SWITCHING.
        """
        old = self.current
        if new not in ALLOWED[old]:
            raise IllegalTransition(f"it {iteration}: phase {old} -> {new} is not allowed")
        if completed is not None and new is not IterationPhase.SWITCHING:
            raise IllegalTransition(f"it {iteration}: only {IterationPhase.SWITCHING} carries a completed iteration")
        self.current, self.completed = new, completed
        logger.info("it %d: phase %s -> %s", iteration, old, new)
