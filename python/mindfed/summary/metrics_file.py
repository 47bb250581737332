"""The JSON-lines ``metrics_file``: one line per finished iteration (spec §9)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from mindfed.summary.record import IterationSummary

logger = logging.getLogger(__name__)


def encode_line(summary: IterationSummary) -> str:
    """Renders a summary the way MindSpore's nlohmann ``dump()`` does.

    Args:
        summary: The iteration to render.

    Returns:
        Compact JSON with keys sorted (nlohmann objects are ordered maps), UTF-8 kept
        as is, plus the trailing newline.
    """
    return json.dumps(summary.to_json_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


class MetricsFile:
    """Appends metrics lines durably; one writer (the summary-lock holder) at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Points at a metrics file; nothing is opened yet.

        Args:
            path: The ``summary.metrics_file`` path; parent folders are made on first append.
        """
        self.path = Path(path)

    def append(self, summary: IterationSummary) -> None:
        """Writes one line for ``summary`` and makes it durable before returning.

        Args:
            summary: The finished iteration.

        Raises:
            OSError: The file or its folder cannot be written.
        """
        line = encode_line(summary).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab+") as handle:
            # A crash mid-write leaves a line without its newline; start on a fresh line so
            # the torn fragment cannot swallow this one.
            if handle.seek(0, os.SEEK_END) > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = b"\n" + line
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


def read_all(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Reads every complete metrics line of a file.

    Lines that are not a JSON object (a write torn by a crash) are skipped with a warning,
    so a restarted server's file stays readable.

    Args:
        path: The metrics file.

    Returns:
        The lines in file order; empty when the file does not exist.
    """
    file = Path(path)
    if not file.exists():
        return []
    records: list[dict[str, Any]] = []
    for number, text in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            logger.warning("%s line %d is not a metrics record (torn write?); skipped", file, number)
    return records
