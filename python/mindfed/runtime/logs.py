"""Logging set-up of a process; only process entry points (cli/, the job API's run()) call it, libraries never do.

`--log_format json` (or MINDFED_LOG_FORMAT=json) writes one JSON object per line to stdout (time, level, logger,
message, pid, and exc_info when there is one), as container log collectors want; the default text lines go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime

TEXT, JSON = "text", "json"
LOG_FORMATS = (TEXT, JSON)
LOG_FORMAT_ENV = "MINDFED_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped by json)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(), "pid": record.process}
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log_format", choices=LOG_FORMATS, default=os.environ.get(LOG_FORMAT_ENV) or TEXT,
                        help="text lines on stderr, or one JSON object per line on stdout (time, level, logger, "
                        f"message, pid) for container log collectors (default: ${LOG_FORMAT_ENV} or text)")


def configure_logging(level: str | None = None, log_format: str | None = None) -> None:
    """Sets the root logger up once (a later call changes nothing, as `logging.basicConfig`)."""
    log_format = log_format or os.environ.get(LOG_FORMAT_ENV) or TEXT
    if log_format not in LOG_FORMATS:
        log_format = TEXT
    handler = logging.StreamHandler(sys.stdout if log_format == JSON else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == JSON else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=(level or os.environ.get("MINDFED_LOG_LEVEL", "INFO")).upper(), handlers=[handler])
