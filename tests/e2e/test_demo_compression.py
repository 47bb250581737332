"""`mindfed demo --yaml_config yamls/lenet_compressed.yaml`: DIFF_SPARSE_QUANT uploads and QUANT downloads end to end
(real processes), checked by the bytes the servers measured. The acceptance run (20 iterations, 8 devices, >= 88 %
test accuracy) is the same command without --devices/--iterations; it takes minutes, so it is run by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
DEVICES = 8  # the YAML's start_fl_job_threshold


def test_compressed_demo_uploads_a_tenth_of_the_bytes(tmp_path: Path) -> None:
    # Execute
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "mindfed.cli.main", "demo", "--yaml_config",
                          str(REPO / "yamls" / "lenet_compressed.yaml"), "--devices", str(DEVICES), "--iterations", "2",
                          "--output", str(out)], capture_output=True, text=True, timeout=300, check=False)
    # Assert: every iteration succeeds and learns; uploads are ~0.1x of float32, downloads ~0.25x
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [line["iterationResult"] for line in lines] == ["success"] * 2
    assert lines[-1]["clientVisitedInfo"]["updateModelAcceptClientNum"] == DEVICES
    assert lines[-1]["testAccuracy"] > lines[0]["testAccuracy"] - 0.05
    with np.load(out / "initial_lenet5.npz") as initial:
        floats = sum(initial[name].size for name in initial.files)
    uncompressed_uploads = DEVICES * 4 * floats
    for line in lines:
        assert line["bytesReceived"] < 0.15 * uncompressed_uploads, line
        assert line["bytesSent"] < 0.5 * uncompressed_uploads, line  # devices + the demo's getModel, 1 byte/float
