"""`mindfed demo` as a user runs it: real processes (embedded redis-server, scheduler, 2 servers, devices), checked by
its printout and its files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def mindfed(*args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mindfed.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def test_short_demo_trains_on_two_servers_and_writes_its_files(tmp_path: Path) -> None:
    # Execute
    out = tmp_path / "demo"
    run = mindfed("demo", "--devices", "4", "--iterations", "3", "--output", str(out))
    # Assert
    assert run.returncode == 0, run.stdout + run.stderr
    state_lines = [line for line in run.stdout.splitlines() if line.strip().startswith("role ")]
    assert [line.split()[1] for line in state_lines] == ["SERVER", "SERVER"], run.stdout
    assert "CLUSTER_READY, 2 nodes" in run.stdout
    by_server = json.loads((out / "summary.json").read_text())["updatesByServer"]
    # 12 uploads, each to a random server: both get some unless the coin lands 12 times alike (p = 2 ** -11)
    assert len(by_server) == 2, by_server
    assert all(count > 0 for count in by_server.values()), by_server
    assert sum(by_server.values()) == 12, by_server
    assert (out / "logs" / "scheduler" / "scheduler.log").is_file()
    lines = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [line["currentIteration"] for line in lines] == [1, 2, 3]
    assert all(line["iterationResult"] == "success" for line in lines)
    assert all(0.0 <= line["testAccuracy"] <= 1.0 for line in lines)
    assert lines[-1]["clientVisitedInfo"]["updateModelAcceptClientNum"] == 4
    assert lines[-1]["testAccuracy"] > lines[0]["testAccuracy"] - 0.05  # it learns, not just runs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 3
    assert (out / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((out / "fl_ckpt").glob("LenetDemo_recovery_iteration_*.ckpt"))) == 3
    assert "final test accuracy" in run.stdout


def test_demo_over_tls_trains_with_https_everywhere(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    run = mindfed("demo", "--tls", "--devices", "2", "--iterations", "2", "--output", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "TLS: HTTPS everywhere" in run.stdout
    assert "GET https://127.0.0.1:" in run.stdout
    assert "CLUSTER_READY, 2 nodes" in run.stdout
    lines = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [line["iterationResult"] for line in lines] == ["success", "success"]
    for log in (out / "logs").rglob("*.log"):  # the generated passwords never reach a log
        assert "password" not in log.read_text().lower(), log


def test_demo_refuses_a_mode_it_cannot_honour(tmp_path: Path) -> None:
    yaml_text = (REPO / "yamls" / "lenet.yaml").read_text().replace("server_mode: FEDERATED_LEARNING",
                                                                   "server_mode: HYBRID_TRAINING")
    (tmp_path / "c.yaml").write_text(yaml_text)
    run = mindfed("demo", "--yaml_config", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "o"))
    assert run.returncode != 0
    assert "server_mode: HYBRID_TRAINING" in run.stderr


def test_demo_with_a_threshold_above_the_devices_is_a_clear_error(tmp_path: Path) -> None:
    run = mindfed("demo", "--yaml_config", str(REPO / "yamls" / "lenet.yaml"), "--devices", "1",
                  "--output", str(tmp_path / "o"))
    assert run.returncode != 0
    assert "start_fl_job_threshold is 2 but only 1 devices run" in run.stderr
