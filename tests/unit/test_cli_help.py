"""The `mindfed` command describes itself: a help text on every flag of every sub-command, `--version`, and
`python -m mindfed`."""

from __future__ import annotations

import argparse
import subprocess
import sys

from mindfed import __version__
from mindfed.cli.main import build_parser


def flags_without_help(parser: argparse.ArgumentParser, name: str) -> list[str]:
    missing = []
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of a parser's flags
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for sub, subparser in action.choices.items():
                missing += flags_without_help(subparser, f"{name} {sub}")
        elif not action.help:
            missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_flag_has_a_help_text():
    assert flags_without_help(build_parser(), "mindfed") == []


def test_version_and_python_dash_m():
    version = subprocess.run([sys.executable, "-m", "mindfed", "--version"], capture_output=True, text=True,
                             check=True, timeout=60)
    server_help = subprocess.run([sys.executable, "-m", "mindfed", "server", "--help"], capture_output=True,
                                 text=True, check=True, timeout=60)

    assert version.stdout.strip() == f"mindfed {__version__}"
    for flag in ("--update_log", "--cache_address", "--heartbeat_ttl_s", "--local_server_num", "--on_stop"):
        assert flag in server_help.stdout
