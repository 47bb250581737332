"""Disaster-recovery checkpoints (spec §6.3, §13): one `.ckpt` per finished iteration, the newest few kept."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from mindfed.errors import ModelFormatError
from mindfed.model.ckpt import read_ckpt, write_ckpt
from mindfed.model.weights import ModelWeights

logger = logging.getLogger(__name__)

_TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"


class RecoveryCheckpoints:
    """The recovery files of one FL job in one directory: `{fl_name}_recovery_iteration_{n}_{%Y%m%d_%H%M%S}.ckpt`.

    Unlike MindSpore, which writes only if `checkpoint_dir` already exists, `save()` creates the directory: a
    configured directory that silently never receives checkpoints defeats disaster recovery.
    Not safe for concurrent writers; in a cluster only the summary-lock holder saves (spec §13).
    """

    def __init__(self, directory: str | os.PathLike[str], fl_name: str, keep: int = 3) -> None:
        """Args:
            directory: where the files live.
            fl_name: the job's name; files of other jobs in the same directory are ignored.
            keep: how many newest files (by iteration) survive each save; MindSpore keeps 3.

        Raises:
            ValueError: empty `fl_name` or `keep` below 1.
        """
        if not fl_name:
            raise ValueError("fl_name must not be empty")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory)
        self.fl_name = fl_name
        self.keep = keep
        self._pattern = re.compile(
            re.escape(fl_name) + r"_recovery_iteration_(0|[1-9][0-9]*)_([0-9]{8}_[0-9]{6})\.ckpt"
        )

    def save(self, iteration: int, weights: ModelWeights, now: datetime | None = None) -> Path:
        """Writes the model of `iteration` (atomically), then deletes all but the `keep` newest files.

        Args:
            iteration: the model's iteration number (>= 0).
            weights: the model; require_aggr flags are not stored (a `.ckpt` cannot hold them).
            now: the time in the file name; defaults to the local time, as MindSpore uses.

        Returns:
            The path written.

        Raises:
            ValueError: negative iteration.
            ModelFormatError: the directory or file cannot be written.
        """
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        stamp = (now or datetime.now()).strftime(_TIMESTAMP_FORMAT)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelFormatError(f"{self.directory}: cannot create checkpoint directory: {exc}") from exc
        path = self.directory / f"{self.fl_name}_recovery_iteration_{iteration}_{stamp}.ckpt"
        write_ckpt(path, dict(weights.items()))
        self._prune()
        return path

    def _prune(self) -> None:
        for iteration, stale in self.list()[self.keep :]:
            try:
                stale.unlink()
            except FileNotFoundError:
                pass  # already gone: nothing to prune
            except OSError as exc:
                logger.warning("cannot delete old recovery checkpoint %s of iteration %d: %s", stale, iteration, exc)

    def list(self) -> list[tuple[int, Path]]:
        """This job's recovery files as (iteration, path), newest first (by iteration, then by timestamp).

        Names are parsed strictly: other files, other jobs' files and names with a malformed iteration or
        timestamp are ignored. A missing directory has no files.
        """
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        found: list[tuple[int, str, Path]] = []
        for entry in entries:
            match = self._pattern.fullmatch(entry.name)
            if match is None or not _is_timestamp(match.group(2)) or not entry.is_file():
                continue
            found.append((int(match.group(1)), match.group(2), entry))
        found.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [(iteration, path) for iteration, _, path in found]

    def latest(self, require_aggr: Mapping[str, bool] | None = None) -> tuple[int, ModelWeights] | None:
        """Loads the newest loadable recovery checkpoint; corrupt or unreadable newer files are skipped.

        Floating-point tensors are kept (as float32; `save()` writes nothing else), others are skipped.

        Args:
            require_aggr: flags to carry over from the configured model (spec §1.2 keeps the flags of same-named
                entries); names the checkpoint lacks are ignored, others default to True.

        Returns:
            (iteration, weights), or None when no file loads. The caller resumes at iteration + 1.
        """
        for iteration, path in self.list():
            try:
                tensors = {name: array for name, array in read_ckpt(path).items() if array.dtype.kind == "f"}
                flags = {name: flag for name, flag in (require_aggr or {}).items() if name in tensors}
                return iteration, ModelWeights(tensors, flags)
            except ValueError as exc:  # ModelFormatError is a ValueError, and so is ModelWeights' refusal
                logger.warning("skipping unloadable recovery checkpoint %s: %s", path, exc)
        return None


def _is_timestamp(text: str) -> bool:
    try:
        datetime.strptime(text, _TIMESTAMP_FORMAT)
    except ValueError:
        return False
    return True
