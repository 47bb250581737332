"""`mindfed config check FILE [--set KEY=VALUE ...]`: validate a YAML config and print the effective one.

Prints every key, defaults included, as YAML on stdout and exits 0. A file the server would refuse is refused here with
the server's own text: an invalid file (file, dotted key, value, what is allowed), or a mode this build cannot honour
(the server's capability check, run here unchanged); the message goes to stderr and the exit code is 78
(CONFIG_ERROR, as every mindfed command's). Warnings the config layer logs (e.g. upload compression forced off under
PW_ENCRYPT) go to stderr, and so does one `note:` line on a Sentinel or Cluster address (what it names and how many
replicas an update waits for). With `enable_ssl: true` the HTTPS material is checked too: the cipher list and the p12
file always; its password, dates and key only when MINDFED_SSL_SERVER_PASSWORD (or *_FILE) is set, as for the server;
certificate expiry warnings then go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys

import yaml

from mindfed.cli.exit_codes import CONFIG_ERROR, OK, USAGE_ERROR
from mindfed.config import FLConfig, load, parse_override, to_dict
from mindfed.errors import ConfigError
from mindfed.server.capabilities import check_supported

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
        OK when the server would start with the config, CONFIG_ERROR when it would refuse it, USAGE_ERROR on bad
        arguments.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 and args[0] == "check":
        args = args[1:]
    try:
        ns = _parser().parse_args(args)
    except SystemExit as e:  # argparse exits on --help (0) and on usage errors (2)
        return OK if e.code == 0 else USAGE_ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    config_logger = logging.getLogger(_CONFIG_LOGGER)
    config_logger.addHandler(handler)
    try:
        overrides = dict(parse_override(text) for text in ns.overrides)
        cfg = load(ns.file, overrides)
        check_supported(cfg, ns.file)
        notes = check_tls(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return CONFIG_ERROR
    finally:
        config_logger.removeHandler(handler)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    topology = cache_topology_note(cfg)
    if topology:
        print(f"note: {topology}", file=sys.stderr)
    effective = to_dict(cfg)
    effective["distributed_cache"]["address"] = cfg.distributed_cache.display_address  # never print a password
    sys.stdout.write(yaml.safe_dump(effective, sort_keys=False, default_flow_style=False))
    return OK


def cache_topology_note(cfg: FLConfig) -> str:
    """What a Sentinel or Cluster `distributed_cache.address` names (no secret), "" for one Redis."""
    cache = cfg.distributed_cache
    ha = cache.ha
    if ha is None:
        return ""
    acks = cache.effective_replica_acks
    waits = (f"an update is acknowledged once {acks} replica(s) hold it (replica_acks, WAIT up to "
             f"{cache.replica_ack_timeout_ms} ms)" if acks else "updates do not wait for replicas (replica_acks 0)")
    return f"distributed_cache: {ha.describe()}; {waits}"


def check_tls(cfg: FLConfig) -> list[str]:
    """With enable_ssl, the HTTPS material as the server would check it (mindfed.tls); the notes to print."""
    if not cfg.enable_ssl:
        return []
    from mindfed.tls.passwords import SERVER_PASSWORD_ENV, password_from_env  # noqa: PLC0415 - cryptography: lazily
    from mindfed.tls.server_context import check_server_material  # noqa: PLC0415

    return check_server_material(cfg.ssl, password_from_env(SERVER_PASSWORD_ENV))


if __name__ == "__main__":
    sys.exit(main())
