"""The two local-time text formats MindSpore's summary files use."""

from __future__ import annotations

from datetime import datetime


def _local(moment: datetime) -> datetime:
    # Naive datetimes are taken as local already; aware ones are converted so every file
    # shows the server's wall clock, as MindSpore's localtime()-based formatting does.
    return moment if moment.tzinfo is None else moment.astimezone()


def format_millis(moment: datetime) -> str:
    """Formats a moment as ``"YYYY-mm-dd HH:MM:SS.mmm"`` in local time.

    Args:
        moment: Naive (taken as local) or timezone-aware datetime.

    Returns:
        The text, milliseconds truncated (not rounded) like MindSpore's formatter.
    """
    local = _local(moment)
    return f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d}"


def format_seconds(moment: datetime) -> str:
    """Formats a moment as ``"YYYY-mm-dd HH:MM:SS"`` in local time.

    Args:
        moment: Naive (taken as local) or timezone-aware datetime.

    Returns:
        The text, sub-second part dropped.
    """
    return f"{_local(moment):%Y-%m-%d %H:%M:%S}"
