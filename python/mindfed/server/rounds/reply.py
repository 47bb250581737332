"""What a round handler hands back to the HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass

from mindfed.server.shared_body import SharedBody


@dataclass(frozen=True, slots=True)
class RoundReply:
    """A FlatBuffer (`bytes`, or a cached `SharedBody` many devices get) or one of the plain-text bodies of spec §3.3
    (`str`).

    `accepted` feeds the per-round accept/reject counts of metrics.json (spec §9).
    """

    body: bytes | str | SharedBody
    accepted: bool = False
