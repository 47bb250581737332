"""`mindfed scheduler`: the management REST API of one job, in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse

from mindfed.config import FLConfig, load
from mindfed.runtime.logs import add_log_format_argument

DEFAULT_MANAGE_ADDRESS = "127.0.0.1:11202"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The seed's run_sched.py flags, plus --cache_address (as the servers have)."""
    parser.add_argument("--yaml_config", required=True, help="the job's YAML (fl_name and distributed_cache)")
    parser.add_argument("--scheduler_manage_address", default=DEFAULT_MANAGE_ADDRESS,
                        help="ip:port of the management REST API")
    parser.add_argument("--cache_address", default="", help="Redis ip:port overriding distributed_cache.address")
    add_log_format_argument(parser)


def load_config(args: argparse.Namespace) -> FLConfig:
    """The YAML with --cache_address applied (what the scheduler will use)."""
    overrides = {"distributed_cache.address": args.cache_address} if args.cache_address else None
    return load(args.yaml_config, overrides)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted, through FlSchedulerJob (the one way a scheduler starts); ConfigError (bad address,
    no Redis address) propagates to `mindfed`'s handler."""
    from mindfed.api.scheduler_job import FlSchedulerJob  # noqa: PLC0415 - keep `mindfed --help` fast
    from mindfed.tls.passwords import SERVER_PASSWORD_ENV, password_from_env  # noqa: PLC0415

    # enable_ssl: HTTPS with ssl.server_cert_path, its password from the environment (never a flag: ps shows flags)
    FlSchedulerJob(args.yaml_config, args.scheduler_manage_address, cache_address=args.cache_address,
                   ssl_server_password=password_from_env(SERVER_PASSWORD_ENV)).run()
    return 0
