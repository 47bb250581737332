"""Secure aggregation (PW_ENCRYPT) crypto: mask expansion vs openssl speed, n=100 unmask, PBKDF2 rate.

Run: `python -m benchmarks.secagg [--json PATH] [--repeats N]`.

Measured in one run, best of N:
  expand   _core.crypto.add_masks with one seed over D = 1M floats, one thread: GB/s of keystream
           (4 bytes per float) folded into the accumulator, against `openssl speed -evp
           aes-256-ctr -seconds 1 -bytes 16384` run beside it (its 16384-byte column); goal >= 0.8.
  unmask   the server's unmask for n = 100 devices with 10 % dropouts, D = 1M floats: add_masks
           with 90 seeds (survivors' b_u) and 10 x 90 pairs (each dropped device's s_sk against
           every survivor), threads = 2; wall seconds, goal < 1 s. Split into key derivation
           (the same pairs over a 4-float array) and expansion (the rest).
  pbkdf2   PBKDF2-HMAC-SHA256 derivations per second (10000 iterations, 32 bytes), one thread,
           against hashlib.pbkdf2_hmac (OpenSSL's PKCS5_PBKDF2_HMAC) measured beside it.
  rounds   one real server process serving demo-shaped rounds (8 devices, LeNet-5) under PW_ENCRYPT
           and plain: its CPU seconds and the wall seconds per iteration, and their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess

import numpy as np

from benchmarks.probe import add_common_args, best_seconds, print_table, write_json
from benchmarks.pw_round import round_figures
from mindfed import _core

crypto = _core.crypto
DIM = 1_000_000
DEVICES, DROPPED = 100, 10
UNMASK_THREADS = 2
EXPAND_GOAL, UNMASK_GOAL_S = 0.8, 1.0
PBKDF2_CALLS = 50


def openssl_ctr_gbps(runs: int) -> float:
    """Best of `runs` runs of `openssl speed -evp aes-256-ctr` at 16384-byte blocks, in GB/s (nan without openssl)."""
    exe = shutil.which("openssl")
    if exe is None:
        return float("nan")
    best = float("nan")
    for _ in range(max(1, runs)):
        out = subprocess.run(
            [exe, "speed", "-evp", "aes-256-ctr", "-seconds", "1", "-bytes", "16384"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        gbps = _parse_speed_16384(out)
        best = gbps if not best >= gbps else best  # nan-safe max
    return best


def _parse_speed_16384(out: str) -> float:
    """The 16384-byte column of openssl speed's table ("1000s of bytes per second", suffix k) in GB/s."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("type"))
    columns = re.findall(r"(\d+) bytes", lines[header])
    row = next(line for line in lines[header + 1 :] if line.upper().startswith("AES-256-CTR"))
    values = re.findall(r"([\d.]+)k", row)
    return float(values[columns.index("16384")]) * 1e3 / 1e9


def _measure_expand(repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    acc = np.zeros(DIM, np.float32)
    seed = (rng.bytes(32), rng.bytes(16), -1.0)

    def run() -> None:
        crypto.add_masks([acc], [seed], [], threads=1)

    run()  # warm up: page in the accumulator
    gbps = 4 * DIM / best_seconds(run, repeats) / 1e9
    openssl = openssl_ctr_gbps(min(repeats, 3))
    return {"expand_gbps": gbps, "openssl_ctr_gbps": openssl, "expand_over_openssl": gbps / openssl}


def _unmask_inputs() -> tuple[list[tuple[bytes, bytes, float]], list[tuple[bytes, bytes, bytes, bytes, float]]]:
    rng = np.random.default_rng(2)
    keys = [crypto.x25519_keypair() for _ in range(DEVICES)]
    salts = [rng.bytes(32) for _ in range(DEVICES)]
    ivs = [rng.bytes(16) for _ in range(DEVICES)]
    survivors, dropped = range(DROPPED, DEVICES), range(DROPPED)
    seeds = [(rng.bytes(32), ivs[u], -1.0) for u in survivors]
    # Device u's fl_id order is its index; salt and IV are those of the smaller id (spec §7.1 step 5).
    pairs = [
        (keys[u][0], keys[v][1], salts[min(u, v)], ivs[min(u, v)], 1.0 if u > v else -1.0)
        for u in dropped
        for v in survivors
    ]
    return seeds, pairs


def _measure_unmask(repeats: int) -> dict[str, float]:
    seeds, pairs = _unmask_inputs()
    acc = np.zeros(DIM, np.float32)
    tiny = np.zeros(4, np.float32)
    runs = min(repeats, 3)  # about a second each
    crypto.add_masks([acc], seeds[:1], [], threads=UNMASK_THREADS)  # warm up
    total = best_seconds(lambda: crypto.add_masks([acc], seeds, pairs, threads=UNMASK_THREADS), runs)
    derive = best_seconds(lambda: crypto.add_masks([tiny], [], pairs, threads=UNMASK_THREADS), runs)
    return {
        "unmask_s": total,
        "unmask_derive_s": derive,
        "unmask_expand_s": max(0.0, total - derive),
        "unmask_keys": len(seeds) + len(pairs),
        "unmask_pairs": len(pairs),
    }


def _measure_pbkdf2(repeats: int) -> dict[str, float]:
    secret, salt = bytes(range(32)), bytes(range(32, 64))

    def ours() -> None:
        for _ in range(PBKDF2_CALLS):
            crypto.pbkdf2_sha256(secret, salt)

    def peer() -> None:
        for _ in range(PBKDF2_CALLS):
            hashlib.pbkdf2_hmac("sha256", secret, salt, 10000, 32)

    rate = PBKDF2_CALLS / best_seconds(ours, repeats)
    peer_rate = PBKDF2_CALLS / best_seconds(peer, repeats)
    return {"pbkdf2_per_s": rate, "pbkdf2_hashlib_per_s": peer_rate, "pbkdf2_over_hashlib": rate / peer_rate}


def _measure_demo_round_cpu(repeats: int) -> dict[str, float]:
    """Server CPU and wall seconds per demo-shaped round (8 devices, LeNet-5), PW_ENCRYPT against plain, best of
    `repeats` runs of 5 rounds each (benchmarks/pw_round.py)."""
    runs = max(1, min(repeats, 3))
    pw = min((round_figures("PW_ENCRYPT") for _ in range(runs)), key=lambda f: f[0])
    plain = min((round_figures("NOT_ENCRYPT") for _ in range(runs)), key=lambda f: f[0])
    return {"round_cpu_pw_s": pw[0], "round_cpu_plain_s": plain[0], "round_cpu_pw_over_plain": pw[0] / plain[0],
            "round_wall_pw_s": pw[1], "round_wall_plain_s": plain[1]}


def main(argv: list[str] | None = None) -> None:
    """Parses arguments, runs every case, prints the table and writes the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.secagg", description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args(argv)
    figures: dict[str, float | int | str] = {
        "dim": DIM,
        "devices": DEVICES,
        "dropped": DROPPED,
        "repeats": args.repeats,
    }
    print(f"mask expansion, D={DIM:,}, 1 thread, vs openssl speed ...")
    figures.update(expand := _measure_expand(args.repeats))
    print(f"unmask: {DEVICES} devices, {DROPPED} dropped, D={DIM:,}, {UNMASK_THREADS} threads ...")
    figures.update(unmask := _measure_unmask(args.repeats))
    print("PBKDF2-HMAC-SHA256, 10000 iterations ...")
    figures.update(pbkdf2 := _measure_pbkdf2(args.repeats))
    print("server CPU per demo round (8 devices, LeNet-5), PW_ENCRYPT vs plain ...")
    figures.update(rounds := _measure_demo_round_cpu(args.repeats))
    print()
    print_table(
        ["figure", "measured", "against", "ratio", "goal"],
        [
            (
                "expand GB/s (1 thread)",
                expand["expand_gbps"],
                expand["openssl_ctr_gbps"],
                expand["expand_over_openssl"],
                f">= {EXPAND_GOAL} x openssl",
            ),
            (
                f"unmask s ({unmask['unmask_keys']} keys)",
                unmask["unmask_s"],
                UNMASK_GOAL_S,
                unmask["unmask_s"] / UNMASK_GOAL_S,
                f"< {UNMASK_GOAL_S} s",
            ),
            (f"  derive {unmask['unmask_pairs']} pair keys s", unmask["unmask_derive_s"], "", "", ""),
            ("  expand s", unmask["unmask_expand_s"], "", "", ""),
            (
                "PBKDF2 /s (1 thread)",
                pbkdf2["pbkdf2_per_s"],
                pbkdf2["pbkdf2_hashlib_per_s"],
                pbkdf2["pbkdf2_over_hashlib"],
                "x hashlib",
            ),
            ("server CPU s / round, PW", rounds["round_cpu_pw_s"], rounds["round_cpu_plain_s"],
             rounds["round_cpu_pw_over_plain"], "x plain"),
            ("  wall s / round, PW", rounds["round_wall_pw_s"], rounds["round_wall_plain_s"],
             rounds["round_wall_pw_s"] / rounds["round_wall_plain_s"], "x plain"),
        ],
    )
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
