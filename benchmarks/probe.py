"""Shared benchmark helpers: best-of-N timing, the STREAM triad probe, tables, flat JSON.

Memory bandwidth on shared hosts moves by up to 2x within minutes, so every benchmark measures
the triad probe in the same run, right beside each case, and reports its figures as ratios.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import mindfed
from mindfed import _core

logger = logging.getLogger(__name__)

# 3 arrays x 64 MiB: far beyond a 32 MiB L3, so the probe measures DRAM, not cache.
TRIAD_FLOATS = 16 * 1024 * 1024


def add_common_args(parser: argparse.ArgumentParser, default_repeats: int = 5) -> None:
    """Adds `--json PATH` and `--repeats N` to a benchmark's argument parser."""
    parser.add_argument("--json", type=Path, default=None, help="write the figures as a flat JSON object")
    parser.add_argument("--repeats", type=int, default=default_repeats, help="best of N runs (default %(default)s)")


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """Runs `run` `repeats` times and returns the fastest wall time in seconds."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


class TriadProbe:
    """STREAM triad a = b + s*c on one thread, over arrays that leave the last-level cache.

    Args:
        n_floats: Elements per array (three float32 arrays are allocated and touched once).
    """

    def __init__(self, n_floats: int = TRIAD_FLOATS) -> None:
        self._a = np.zeros(n_floats, np.float32)
        self._b = np.ones(n_floats, np.float32)
        self._c = np.full(n_floats, 2.0, np.float32)

    def gbps(self, repeats: int) -> float:
        """Best-of-`repeats` triad bandwidth in GB/s (10^9 bytes), counting 3 arrays as STREAM does."""
        seconds = _core.bench.triad(self._a, self._b, self._c, 3.0, max(1, repeats))
        return 3 * self._a.nbytes / seconds / 1e9


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Prints rows as an aligned text table; floats get two decimals."""
    cells = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def write_json(path: Path | None, figures: dict[str, float | int | str]) -> None:
    """Writes `figures` as one flat JSON object to `path` (nothing when path is None)."""
    if path is None:
        return
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    logger.info("wrote %s", path)


def child_pythonpath(extra: Sequence[str] = ()) -> str:
    """PYTHONPATH for a child process that must import this very mindfed (an install, an editable install or a
    source tree on PYTHONPATH) plus `extra`: the folder the running package was imported from, never a guess at the
    checkout's python/ folder, which holds no compiled core in a plain `pip install .`."""
    import os  # noqa: PLC0415

    here = str(Path(mindfed.__file__).resolve().parents[1])
    return os.pathsep.join(p for p in (here, *extra, os.environ.get("PYTHONPATH", "")) if p)


def terminate(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM a child this benchmark started (by its own pid), SIGKILL it if it has not exited after `grace_s`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
