"""What a round handler hands back to the HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoundReply:
    """A FlatBuffer (`bytes`) or one of the plain-text bodies of spec §3.3 (`str`).

    `accepted` feeds the per-round accept/reject counts of metrics.json (spec §9).
    """

    body: bytes | str
    accepted: bool = False
