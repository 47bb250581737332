"""Where a server makes an accepted update durable before acknowledging it: the `--update_log` modes.

- "on": its body goes into this server's write-ahead log in Redis, with its reservation (docs/cluster.md,
  Durability). Any number of servers may die; Redis must live.
- "replica": its body is copied to one live peer first, and Redis logs a marker naming that peer
  (server/replicas.py). One server may die at a time; large bodies stay off Redis. With no live peer, "on".
- "off": nothing before the acknowledgement; a killed server loses the updates since its last checkpoint.
"""

from __future__ import annotations

UPDATE_LOG_MODES = ("on", "off", "replica")


def update_log_mode(value: bool | str) -> str:
    """One of UPDATE_LOG_MODES from the flag's text or from a bool (True: "on", False: "off").

    Raises:
        ValueError: anything else.
    """
    if isinstance(value, bool):
        return "on" if value else "off"
    if value not in UPDATE_LOG_MODES:
        raise ValueError(f"update_log must be one of {UPDATE_LOG_MODES}, not {value!r}")
    return value
