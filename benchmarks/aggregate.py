"""Aggregation throughput: C++ accumulate (single and grouped) vs numpy vs the triad probe.

Run: `python -m benchmarks.aggregate [--json PATH] [--repeats N]`.

For K = 100 updates of D = 1M and D = 10M float32 values it measures, in one run, the GB/s of
update bytes consumed (K * D * 4 bytes per pass) by:
  cpp_single   _core.agg.accumulate, one update per pass over the accumulator
  cpp_group4/8 _core.agg.accumulate_group, 4 or 8 updates per pass over the accumulator
  numpy        acc += w * x (allocates a D-sized temporary per update)
  accumulator  IterationAccumulator.add() x K, all concurrent (the server's path, grouping 8)
and divides each by the triad probe measured right before it. Distinct update arrays are
generated once; at D = 10M only 8 distinct arrays (320 MB) are cycled to make K adds.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

import numpy as np

from benchmarks.probe import TriadProbe, add_common_args, best_seconds, print_table, write_json
from mindfed import _core
from mindfed.aggregation import IterationAccumulator

K_UPDATES = 100
# (label, D, distinct arrays): every distinct set is >= 320 MB, so updates always come from DRAM.
DIMENSIONS = [("d1m", 1_000_000, 100), ("d10m", 10_000_000, 8)]


def _cases(
    acc: np.ndarray, updates: list[np.ndarray], loop: asyncio.AbstractEventLoop
) -> dict[str, Callable[[], object]]:
    """The timed loops; each folds K_UPDATES updates (cycled from `updates`) into acc.

    The accumulator case runs on `loop`, one loop for all repeats: an IterationAccumulator
    belongs to the loop that first uses it.
    """
    cycled = [updates[i % len(updates)] for i in range(K_UPDATES)]

    def grouped(size: int) -> Callable[[], None]:
        groups = [cycled[g : g + size] for g in range(0, K_UPDATES, size)]
        weights = [[1.0] * len(g) for g in groups]

        def run() -> None:
            for group, w in zip(groups, weights, strict=True):
                _core.agg.accumulate_group(acc, group, w)

        return run

    def single() -> None:
        for update in cycled:
            _core.agg.accumulate(acc, update, 1.0)

    def numpy_axpy() -> None:
        nonlocal acc
        for update in cycled:
            acc += 1.0 * update

    accumulator = IterationAccumulator({"w": acc.size}, max_group=8, max_pending=16)

    def through_accumulator() -> None:
        accumulator.reset()

        async def add_all() -> None:
            await asyncio.gather(*(accumulator.add({"w": u}, 1) for u in cycled))

        loop.run_until_complete(add_all())

    return {
        "cpp_single": single,
        "cpp_group4": grouped(4),
        "cpp_group8": grouped(8),
        "numpy": numpy_axpy,
        "accumulator": through_accumulator,
    }


def _measure(label: str, dim: int, distinct: int, probe: TriadProbe, repeats: int) -> dict[str, float | int]:
    rng = np.random.default_rng(dim)
    updates = [rng.standard_normal(dim, dtype=np.float32) for _ in range(distinct)]
    acc = np.zeros(dim, np.float32)
    update_bytes = K_UPDATES * dim * 4
    figures: dict[str, float | int] = {f"{label}_distinct_updates": distinct}
    triads: list[float] = []
    loop = asyncio.new_event_loop()
    try:
        for case, run in _cases(acc, updates, loop).items():
            run()  # warm up: page in the accumulator and the code paths
            triad = probe.gbps(repeats)  # right beside the case it normalises
            triads.append(triad)
            gbps = update_bytes / best_seconds(run, repeats) / 1e9
            figures[f"{label}_{case}_gbps"] = gbps
            figures[f"{label}_{case}_over_triad"] = gbps / triad
    finally:
        loop.close()
    figures[f"{label}_triad_gbps"] = max(triads)
    figures[f"{label}_cpp_over_numpy"] = figures[f"{label}_cpp_single_gbps"] / figures[f"{label}_numpy_gbps"]
    figures[f"{label}_group8_over_numpy"] = figures[f"{label}_cpp_group8_gbps"] / figures[f"{label}_numpy_gbps"]
    # Short aliases named in the issue.
    figures[f"{label}_cpp_over_triad"] = figures[f"{label}_cpp_single_over_triad"]
    figures[f"{label}_group4_over_triad"] = figures[f"{label}_cpp_group4_over_triad"]
    figures[f"{label}_group8_over_triad"] = figures[f"{label}_cpp_group8_over_triad"]
    return figures


def main(argv: list[str] | None = None) -> None:
    """Parses arguments, runs every dimension, prints the table and writes the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.aggregate", description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args(argv)
    probe = TriadProbe()
    figures: dict[str, float | int | str] = {"k_updates": K_UPDATES, "repeats": args.repeats}
    rows = []
    for label, dim, distinct in DIMENSIONS:
        print(f"{label}: K={K_UPDATES} updates of D={dim:,} floats, {distinct} distinct arrays cycled ...")
        measured = _measure(label, dim, distinct, probe, args.repeats)
        figures.update(measured)
        for case in ("cpp_single", "cpp_group4", "cpp_group8", "numpy", "accumulator"):
            rows.append((label, case, measured[f"{label}_{case}_gbps"], measured[f"{label}_{case}_over_triad"]))
        rows.append((label, "triad (1 thread)", measured[f"{label}_triad_gbps"], 1.0))
    print()
    print_table(["D", "case", "GB/s of updates", "x triad"], rows)
    for label, _, _ in DIMENSIONS:
        print(
            f"{label}: cpp/numpy = {figures[f'{label}_cpp_over_numpy']:.2f}, "
            f"group8/numpy = {figures[f'{label}_group8_over_numpy']:.2f}"
        )
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
