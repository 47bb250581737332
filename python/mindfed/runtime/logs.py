"""Logging set-up of a process; only process entry points (cli/, the job API's run()) call it, libraries never do."""

from __future__ import annotations

import logging
import os


def configure_logging(level: str | None = None) -> None:
    logging.basicConfig(level=(level or os.environ.get("MINDFED_LOG_LEVEL", "INFO")).upper(),
                        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
