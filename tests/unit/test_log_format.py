"""`--log_format json`: one JSON object per line on stdout (time, level, logger, message, pid), for containers."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from mindfed.cli import scheduler as scheduler_cli
from mindfed.cli.server_process import add_process_arguments, forwarded_argv

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"
SCRIPT = """
import logging, sys
from mindfed.runtime.logs import configure_logging
configure_logging(log_format=sys.argv[1])
log = logging.getLogger("mindfed.test")
log.info("hello %s", "world")
log.warning('a "quoted"\\nmessage')
try:
    raise ValueError("boom")
except ValueError:
    log.exception("failed")
log.debug("not shown at INFO")
"""


def run_logging(log_format: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k != "MINDFED_LOG_FORMAT"}
    full_env = {**inherited, "PYTHONPATH": str(PYTHON_DIR), "MINDFED_LOG_LEVEL": "INFO", **(env or {})}
    return subprocess.run([sys.executable, "-c", SCRIPT, log_format], capture_output=True, text=True, env=full_env,
                          check=True, timeout=60)


def test_json_lines_on_stdout() -> None:
    result = run_logging("json")
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 3  # noqa: PLR2004 - info, warning, exception; debug filtered out
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert set(entry) >= {"time", "level", "logger", "message", "pid"}
        assert entry["logger"] == "mindfed.test"
        assert isinstance(entry["pid"], int)
        assert datetime.fromisoformat(entry["time"]).tzinfo is not None
    assert [e["level"] for e in entries] == ["INFO", "WARNING", "ERROR"]
    assert entries[0]["message"] == "hello world"
    assert entries[1]["message"] == 'a "quoted"\nmessage'
    assert "ValueError: boom" in entries[2]["exc_info"]


def test_text_stays_on_stderr() -> None:
    result = run_logging("text")
    assert result.stdout == ""
    assert "INFO" in result.stderr
    assert "mindfed.test: hello world" in result.stderr


def test_environment_chooses_json_when_no_flag() -> None:
    result = run_logging("", env={"MINDFED_LOG_FORMAT": "json"})
    assert json.loads(result.stdout.splitlines()[0])["message"] == "hello world"


def test_the_flag_on_server_processes_and_the_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINDFED_LOG_FORMAT", raising=False)
    server = argparse.ArgumentParser()
    add_process_arguments(server)
    args = server.parse_args(["--yaml_config=x.yaml", "--http_server_address=127.0.0.1:6666", "--log_format=json"])
    assert args.log_format == "json"
    assert "--log_format" in forwarded_argv(args)  # `mindfed server` passes it on to its server processes
    assert server.parse_args(["--yaml_config=x.yaml", "--http_server_address=127.0.0.1:1"]).log_format == "text"
    scheduler = argparse.ArgumentParser()
    scheduler_cli.add_arguments(scheduler)
    assert scheduler.parse_args(["--yaml_config=x.yaml", "--log_format", "json"]).log_format == "json"
    with pytest.raises(SystemExit):
        scheduler.parse_args(["--yaml_config=x.yaml", "--log_format", "xml"])
