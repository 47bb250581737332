"""Writing a file so that readers see either the old file or the complete new one, never a partial write."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mindfed.errors import ModelFormatError

Chunk = bytes | bytearray | memoryview


def write_atomically(path: str | os.PathLike[str], chunks: Iterable[Chunk]) -> None:
    """Writes `chunks` to a temporary file beside `path`, fsyncs it, then renames it over `path`.

    A crash (or an exception from `chunks`) leaves `path` untouched and removes the temporary file. The file gets
    `tempfile`'s owner-only permissions (0600): model files are not meant for other users.

    Args:
        path: destination; its directory must exist.
        chunks: the file's bytes, in order (any buffer, so large arrays are written without a copy).

    Raises:
        ModelFormatError: the file cannot be created, written or renamed.
    """
    destination = Path(path)
    try:
        # Not a with-block here: the name must outlive the handle for the rename below.
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp", delete=False
        )
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot write: {exc}") from exc
    try:
        with handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        Path(handle.name).replace(destination)
    except OSError as exc:
        Path(handle.name).unlink(missing_ok=True)
        raise ModelFormatError(f"{path}: cannot write: {exc}") from exc
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
