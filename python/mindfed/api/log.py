"""MindSpore Federated's `log` module (`from mindspore_federated import log as logger`), over `logging`.

Messages go to the `mindfed.user` logger; scripts written for MindSpore call `logger.info(f"...")`.
"""

from __future__ import annotations

import logging

_logger = logging.getLogger("mindfed.user")


def debug(msg: object, *args: object) -> None:
    """Logs `msg % args` at DEBUG."""
    _logger.debug(msg, *args, stacklevel=2)


def info(msg: object, *args: object) -> None:
    """Logs `msg % args` at INFO."""
    _logger.info(msg, *args, stacklevel=2)


def warning(msg: object, *args: object) -> None:
    """Logs `msg % args` at WARNING."""
    _logger.warning(msg, *args, stacklevel=2)


def error(msg: object, *args: object) -> None:
    """Logs `msg % args` at ERROR."""
    _logger.error(msg, *args, stacklevel=2)


def exception(msg: object, *args: object) -> None:
    """Logs `msg % args` at ERROR with the current exception's traceback."""
    _logger.exception(msg, *args, stacklevel=2)


def critical(msg: object, *args: object) -> None:
    """Logs `msg % args` at CRITICAL."""
    _logger.critical(msg, *args, stacklevel=2)
