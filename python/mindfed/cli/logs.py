"""Logging set-up; only cli/ and process entry points configure handlers."""

from __future__ import annotations

import logging
import os


def configure_logging(level: str | None = None) -> None:
    logging.basicConfig(level=(level or os.environ.get("MINDFED_LOG_LEVEL", "INFO")).upper(),
                        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
