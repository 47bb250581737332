"""``summary.participation_time_level``: how fast accepted devices finished their update (spec §9)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

logger = logging.getLogger(__name__)

_MS_PER_MINUTE = 60_000


@dataclass(frozen=True, slots=True)
class ParticipationLevels:
    """Two minute thresholds ``a < b``; levels are cumulative (level3 counts every update).

    Attributes:
        level1_min: Updates costing under this many minutes count in level 1.
        level2_min: Updates costing under this many minutes count in level 2.
    """

    level1_min: int = 5
    level2_min: int = 15

    MAX_MINUTES: ClassVar[int] = 2880  # two days, MindSpore's upper bound

    def __post_init__(self) -> None:
        if not 0 < self.level1_min < self.level2_min <= self.MAX_MINUTES:
            raise ValueError(
                f"participation levels need 0 < a < b <= {self.MAX_MINUTES}, got {self.level1_min},{self.level2_min}"
            )

    @classmethod
    def parse(cls, text: str) -> ParticipationLevels:
        """Parses the YAML value ``"a,b"`` (whole minutes).

        Like MindSpore, a bad value does not stop the server: it falls back to ``5,15``.

        Args:
            text: The ``summary.participation_time_level`` value.

        Returns:
            The levels, or the default ``(5, 15)`` with a logged warning when ``text`` is
            not two integers with ``0 < a < b <= 2880``.
        """
        parts = text.split(",")
        try:
            if len(parts) != 2:
                raise ValueError(f"expected two values, got {len(parts)}")
            return cls(int(parts[0].strip()), int(parts[1].strip()))
        except ValueError as err:
            logger.warning("summary.participation_time_level %r is invalid (%s); using 5,15", text, err)
            return cls()

    def classify(self, cost_ms: int) -> tuple[bool, bool, bool]:
        """Which level counters one accepted updateModel increments.

        Args:
            cost_ms: Milliseconds from the device's startFLJob to its accepted updateModel.

        Returns:
            ``(level1, level2, level3)``: cost under ``a`` minutes, under ``b`` minutes, and
            always True.
        """
        return (
            cost_ms < self.level1_min * _MS_PER_MINUTE,
            cost_ms < self.level2_min * _MS_PER_MINUTE,
            True,
        )
