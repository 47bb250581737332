"""Compression throughput: decode-and-accumulate vs dense accumulate, quantise vs the triad probe.

Run: `python -m benchmarks.compression [--json PATH] [--repeats N]`.

For D = 1M and 10M coordinates (upload_sparse_rate 0.4) it measures, in one run:
  dense      _core.agg.accumulate(acc, update, 1.0): what a NO_COMPRESS upload costs the server
  decode     _core.compression.decode_accumulate: acc += decoded sparse int8 upload + n * latest
  mask       _core.compression.sparse_indices: the seeded mask, once per iteration (shared)
each over CLIENTS distinct uploads, as million coordinates per second (D per upload), and the
ratio decode / dense. Then quantise and dequantise of QUANT_FLOATS floats (beyond the L3 cache)
as GB/s of float32 bytes (4 per coordinate; the 1-byte codes are not counted) against the
triad probe measured right beside them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from benchmarks.probe import TriadProbe, add_common_args, best_seconds, print_table, write_json
from mindfed import _core

RATE, ITERATION, DATA_SIZE = 0.4, 7, 50
CLIENTS = 8
DIMENSIONS = [("d1m", 1_000_000), ("d10m", 10_000_000)]
QUANT_FLOATS = 16 * 1024 * 1024


def _accumulate_cases(dim: int) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(dim)
    kept = _core.compression.sparse_indices(dim, RATE, ITERATION)
    codes = [rng.integers(-128, 128, kept.size, dtype=np.int8) for _ in range(CLIENTS)]
    dense = [rng.standard_normal(dim, dtype=np.float32) for _ in range(CLIENTS)]
    latest = rng.standard_normal(dim, dtype=np.float32)
    acc = np.zeros(dim, np.float32)

    def run_dense() -> None:
        for update in dense:
            _core.agg.accumulate(acc, update, 1.0)

    def run_decode() -> None:
        for c in codes:
            _core.compression.decode_accumulate(acc, c, -0.5, 0.5, kept, 0, latest, DATA_SIZE)

    return {"dense": run_dense, "decode": run_decode}


def _measure_accumulate(label: str, dim: int, repeats: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for case, run in _accumulate_cases(dim).items():
        run()  # warm up: page in the arrays
        figures[f"{label}_{case}_mcoords_per_s"] = CLIENTS * dim / best_seconds(run, repeats) / 1e6
    mask_s = best_seconds(lambda: _core.compression.sparse_indices(dim, RATE, ITERATION), min(repeats, 3))
    figures[f"{label}_mask_mcoords_per_s"] = dim / mask_s / 1e6
    figures[f"{label}_mask_ms"] = mask_s * 1e3
    figures[f"{label}_decode_over_dense"] = (
        figures[f"{label}_decode_mcoords_per_s"] / figures[f"{label}_dense_mcoords_per_s"]
    )
    return figures


def _measure_quantize(probe: TriadProbe, repeats: int) -> dict[str, float]:
    x = np.random.default_rng(1).standard_normal(QUANT_FLOATS, dtype=np.float32)
    codes = np.empty(QUANT_FLOATS, np.int8)
    out = np.empty(QUANT_FLOATS, np.float32)
    cases: dict[str, Callable[[], object]] = {
        "quantize": lambda: _core.compression.quantize_into(x, codes),
        "dequantize": lambda: _core.compression.dequantize_into(codes, -4.0, 4.0, out),
    }
    figures: dict[str, float] = {}
    for case, run in cases.items():
        run()
        triad = probe.gbps(repeats)
        gbps = x.nbytes / best_seconds(run, repeats) / 1e9
        figures[f"{case}_gbps"] = gbps
        figures[f"{case}_triad_gbps"] = triad
        figures[f"{case}_over_triad"] = gbps / triad
    return figures


def main(argv: list[str] | None = None) -> None:
    """Parses arguments, runs every case, prints the tables and writes the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compression", description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args(argv)
    figures: dict[str, float | int | str] = {"rate": RATE, "clients": CLIENTS, "repeats": args.repeats}
    rows = []
    for label, dim in DIMENSIONS:
        print(f"{label}: {CLIENTS} uploads of D={dim:,} at rate {RATE} ...")
        measured = _measure_accumulate(label, dim, args.repeats)
        figures.update(measured)
        for case in ("dense", "decode", "mask"):
            rows.append((label, case, measured[f"{label}_{case}_mcoords_per_s"]))
    print()
    print_table(["D", "case", "M coords/s"], rows)
    for label, _ in DIMENSIONS:
        print(
            f"{label}: decode/dense = {figures[f'{label}_decode_over_dense']:.2f}, "
            f"mask once per iteration = {figures[f'{label}_mask_ms']:.1f} ms"
        )
    print(f"\nquantise / dequantise of {QUANT_FLOATS:,} floats ...")
    quant = _measure_quantize(TriadProbe(), args.repeats)
    figures.update(quant)
    print_table(
        ["case", "GB/s of float32", "triad GB/s", "x triad"],
        [
            (case, quant[f"{case}_gbps"], quant[f"{case}_triad_gbps"], quant[f"{case}_over_triad"])
            for case in ("quantize", "dequantize")
        ],
    )
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
