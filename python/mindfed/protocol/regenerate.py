"""Regenerates `protocol/generated/` from `protocol/schema/*.fbs` with flatc: `python -m mindfed.protocol.regenerate`.

A developer's tool, never run by the server. flatc writes one module per type under the schema's namespace
(mindspore/fl/schema/); they are moved flat into generated/, with their cross-imports made relative, so that the
package needs no top-level `mindspore` package. The generated `__init__.py` (ours) is kept. flatc 2.0.8 (Debian
bookworm's flatbuffers-compiler) made the committed files; another version may change them.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMAS = ("fl_job.fbs", "cipher.fbs")
NAMESPACE = ("mindspore", "fl", "schema")
_ABSOLUTE = re.compile(r"\bfrom mindspore\.fl\.schema\.(\w+) import")


def regenerate(flatc: str, target: Path) -> list[str]:
    """Runs flatc over SCHEMAS into `target` (generated/), replacing its modules; returns their names."""
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([flatc, "--python", "-o", scratch, *(str(HERE / "schema" / s) for s in SCHEMAS)], check=True)
        produced = sorted(Path(scratch, *NAMESPACE).glob("*.py"))
        produced = [p for p in produced if p.name != "__init__.py"]
        if not produced:
            raise SystemExit(f"flatc wrote no modules under {'/'.join(NAMESPACE)}")
        for stale in target.glob("*.py"):
            if stale.name != "__init__.py":
                stale.unlink()
        for module in produced:
            (target / module.name).write_text(_ABSOLUTE.sub(r"from .\1 import", module.read_text()))
    return [p.name for p in produced]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mindfed.protocol.regenerate", description=__doc__)
    parser.add_argument("--flatc", default=shutil.which("flatc") or "", help="the flatc binary (default: on PATH)")
    args = parser.parse_args(argv)
    if not args.flatc:
        print("error: flatc not found: install it (Debian: apt-get install flatbuffers-compiler) or pass --flatc",
              file=sys.stderr)
        return 1
    names = regenerate(args.flatc, HERE / "generated")
    print(f"regenerated {len(names)} modules in {HERE / 'generated'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
