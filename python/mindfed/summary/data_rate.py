"""``summary.data_rate_dir``: per-second device traffic, appended to one file per day (spec §9)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from mindfed.summary.timestamps import format_seconds

#: The rounds whose traffic MindSpore records; other requests are not counted.
RECORDED_ROUNDS = frozenset(
    {
        "startFLJob",
        "updateModel",
        "getModel",
        "getResult",
        "exchangeKeys",
        "getKeys",
        "shareSecrets",
        "getSecrets",
        "getClientList",
        "reconstructSecrets",
        "pushListSign",
    }
)


class DataRateRecorder:
    """Counts request/response bytes of the device rounds, per second and in total.

    Totals are always kept (the server reports bytes per iteration); the per-second files
    are written only when a directory is configured. Thread-safe, so :meth:`flush` may run
    in a worker thread while handlers keep recording.
    """

    def __init__(self, directory: str, tcp_address: str) -> None:
        """Starts with no traffic counted.

        Args:
            directory: ``summary.data_rate_dir``; ``""`` disables the files, ``"."`` writes
                them to the working directory without a folder prefix.
            tcp_address: This server's ``host:port``, part of the file name.
        """
        self._directory = directory
        self._tcp_address = tcp_address
        self._lock = threading.Lock()
        self._buckets: defaultdict[int, list[int]] = defaultdict(lambda: [0, 0])
        self._total = [0, 0]
        self._iteration = [0, 0]

    @property
    def enabled(self) -> bool:
        """Whether per-second files are written."""
        return self._directory != ""

    def record(self, round_name: str, received: int, sent: int, now: float | None = None) -> None:
        """Counts one request of a round.

        Args:
            round_name: The round (URL name, e.g. ``"updateModel"``); unlisted rounds are ignored.
            received: Request body size in bytes.
            sent: Response body size in bytes.
            now: Epoch seconds of the request; the current time when None.
        """
        if round_name not in RECORDED_ROUNDS:
            return
        with self._lock:
            for counter in (self._total, self._iteration):
                counter[0] += received
                counter[1] += sent
            if self.enabled:
                bucket = self._buckets[int(time.time() if now is None else now)]
                bucket[0] += received
                bucket[1] += sent

    def totals(self) -> tuple[int, int]:
        """Returns ``(received, sent)`` bytes since this recorder was made."""
        with self._lock:
            return self._total[0], self._total[1]

    def take_iteration_totals(self) -> tuple[int, int]:
        """Returns ``(received, sent)`` bytes since the previous call and restarts the count."""
        with self._lock:
            taken = (self._iteration[0], self._iteration[1])
            self._iteration = [0, 0]
            return taken

    def file_path(self, day: datetime) -> Path:
        """The traffic file for a (local) day: ``{dir}/{YYYY-mm-dd}_flow_server{tcp_address}.json``."""
        name = f"{day:%Y-%m-%d}_flow_server{self._tcp_address}.json"
        return Path(name) if self._directory == "." else Path(self._directory) / name

    def flush(self, now: float | None = None, *, include_current: bool = False) -> int:
        """Appends the finished seconds to the day files and forgets them.

        The current second is kept back (it may still grow) unless ``include_current`` is
        set, as at shutdown, so no second is ever split over two lines.

        Args:
            now: Epoch seconds; the current time when None.
            include_current: Also write the second ``now`` falls in, and any later one.

        Returns:
            The number of lines written (0 when disabled).

        Raises:
            OSError: A traffic file cannot be written.
        """
        if not self.enabled:
            return 0
        cutoff = int(time.time() if now is None else now)
        with self._lock:
            ready = sorted(s for s in self._buckets if include_current or s < cutoff)
            taken = [(second, self._buckets.pop(second)) for second in ready]
        by_file: defaultdict[Path, list[str]] = defaultdict(list)
        for second, (received, sent) in taken:
            moment = datetime.fromtimestamp(second)
            line = {"receive": received, "send": sent, "time": format_seconds(moment)}
            by_file[self.file_path(moment)].append(json.dumps(line, separators=(",", ":")) + "\n")
        for path, lines in by_file.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.writelines(lines)
                handle.flush()
                os.fsync(handle.fileno())
        return len(taken)
