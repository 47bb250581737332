"""`mindfed config check FILE [--set KEY=VALUE ...]`: validate a YAML config and print the effective one.

Prints every key, defaults included, as YAML on stdout and exits 0; on an invalid file prints the
ConfigError message (file, dotted key, value, what is allowed) on stderr and exits EXIT_INVALID_CONFIG.
Warnings the config layer logs (e.g. upload compression forced off under PW_ENCRYPT) go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys

import yaml

from mindfed.config import load, parse_override, to_dict
from mindfed.errors import ConfigError

EXIT_OK = 0
EXIT_INVALID_CONFIG = 2
_CONFIG_LOGGER = "mindfed.config"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mindfed config check",
        description="Validate a mindfed / MindSpore Federated YAML config and print the effective config.",
    )
    parser.add_argument("file", metavar="FILE", help="the YAML config file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a dotted key, e.g. --set round.start_fl_job_threshold=4 (repeatable)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the check.

    Args:
        argv: The arguments after `mindfed config check` (a leading "check" is tolerated, so a
            dispatcher may pass the sub-command through); None reads sys.argv.

    Returns:
        EXIT_OK when the config is valid, EXIT_INVALID_CONFIG when it is not or the arguments are bad.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 and args[0] == "check":
        args = args[1:]
    try:
        ns = _parser().parse_args(args)
    except SystemExit as e:  # argparse exits on --help (0) and on usage errors (2)
        return EXIT_OK if e.code == 0 else EXIT_INVALID_CONFIG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    config_logger = logging.getLogger(_CONFIG_LOGGER)
    config_logger.addHandler(handler)
    try:
        overrides = dict(parse_override(text) for text in ns.overrides)
        cfg = load(ns.file, overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID_CONFIG
    finally:
        config_logger.removeHandler(handler)
    sys.stdout.write(yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
