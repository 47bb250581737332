"""Cross-silo (CLOUD_TRAINING) as a user runs it: real processes (embedded redis-server, scheduler, servers, one torch
worker process per silo on a non-IID digits shard), checked by the printed accuracy and the servers' metrics.

Each aggregation type converges on the same split (spec §11.2); STABLE_PW_ENCRYPT's masked uploads train as well.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ACCURACY = re.compile(r"iteration +(\d+): test accuracy ([\d.]+)%")


def demo(out: Path, *args: str, timeout_s: float = 280) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mindfed.cli.demo_cross_silo", "--output", str(out), *args],
                          capture_output=True, text=True, timeout=timeout_s, check=False)


def accuracies(stdout: str) -> list[float]:
    return [float(m.group(2)) / 100 for m in ACCURACY.finditer(stdout)]


@pytest.mark.parametrize(("kind", "iterations", "target"), [
    ("FedAvg", 8, 0.85), ("FedProx", 8, 0.85), ("Scaffold", 10, 0.85), ("FedNova", 8, 0.85)])
def test_each_aggregation_type_converges_on_non_iid_digits(tmp_path: Path, kind: str, iterations: int,
                                                           target: float) -> None:
    # Execute: 3 silos, Dirichlet α = 0.5 label skew
    out = tmp_path / kind
    run = demo(out, "--devices", "3", "--iterations", str(iterations), "--aggregation_type", kind)

    # Assert
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout)  # the accuracy of every iteration, for the record (-s)
    acc = accuracies(run.stdout)
    assert len(acc) == iterations, run.stdout
    assert max(acc[-3:]) >= target, run.stdout
    assert f"{kind}, NOT_ENCRYPT" in run.stdout
    assert "worker exit codes [0, 0, 0]" in run.stdout
    server = [json.loads(line) for line in (out / "server" / "metrics.json").read_text().splitlines()]
    assert [line["iterationResult"] for line in server] == ["success"] * iterations
    assert all(line["clientVisitedInfo"]["updateModelAcceptClientNum"] == 3 for line in server)


def test_stable_pw_workers_train_with_masked_uploads_on_two_servers(tmp_path: Path) -> None:
    # Execute: 3 silos spread over 2 servers; every upload is masked, only the sum is readable
    out = tmp_path / "stable"
    run = demo(out, "--devices", "3", "--iterations", "6", "--servers", "2", "--encrypt_train_type",
               "STABLE_PW_ENCRYPT")

    # Assert
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout)
    acc = accuracies(run.stdout)
    assert len(acc) == 6, run.stdout
    assert acc[-1] >= 0.8, run.stdout
    assert "CLUSTER_READY, 2 nodes" in run.stdout
    server = [json.loads(line) for line in (out / "server" / "metrics.json").read_text().splitlines()]
    assert [line["iterationResult"] for line in server] == ["success"] * 6
