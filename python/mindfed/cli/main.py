"""The `mindfed` command: `server`, `scheduler`, `worker`, `finish`, `demo`, `certs`, `config check`, and the operator's
`state`, `enable`, `disable`, `new-instance`, `query-instance` (cli/operator_cli.py)."""

from __future__ import annotations

import argparse
import sys

from mindfed import __version__
from mindfed.cli.exit_codes import CONFIG_ERROR
from mindfed.errors import CacheError, ConfigError, ModelFormatError
from mindfed.runtime.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    from mindfed.cli import certs, demo, finish, operator_cli, scheduler, server, worker  # noqa: PLC0415 - keep `mindfed --help` fast

    parser = argparse.ArgumentParser(prog="mindfed", description="Federated-learning cluster, MindSpore-compatible.")
    parser.add_argument("--version", action="version", version=f"mindfed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    server.add_launch_arguments(sub.add_parser("server", help="start N FL servers (foreground)"))
    scheduler.add_arguments(sub.add_parser("scheduler", help="management REST API of a job (foreground)"))
    worker.add_arguments(sub.add_parser("worker", help="hybrid (HYBRID_TRAINING) or cross-silo (CLOUD_TRAINING) "
                                        "workers, as the YAML's server_mode says (foreground)"))
    finish.add_arguments(sub.add_parser("finish", help="stop every cluster process using a Redis port"))
    demo.add_arguments(sub.add_parser("demo", help="train LeNet with simulated devices on a local cluster"))
    certs.add_arguments(sub.add_parser("certs", help="write development TLS and device-PKI material to a directory"))
    config = sub.add_parser("config", help="configuration tools").add_subparsers(dest="config_command", required=True)
    check = config.add_parser("check", help="validate a YAML and print the effective config")
    check.add_argument("file", help="the YAML config file")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a dotted key")
    operator_cli.add_arguments(sub)  # state, enable, disable, new-instance, query-instance
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("WARNING" if args.command in ("demo", "config") else None, getattr(args, "log_format", None))
    try:
        from mindfed.cli import operator_cli  # noqa: PLC0415

        if args.command in operator_cli.COMMANDS:
            return operator_cli.run(args)
        if args.command == "server":
            from mindfed.cli import server  # noqa: PLC0415

            return server.run(args)
        if args.command == "scheduler":
            from mindfed.cli import scheduler  # noqa: PLC0415

            return scheduler.run(args)
        if args.command == "worker":
            from mindfed.cli import worker  # noqa: PLC0415

            return worker.run(args)
        if args.command == "finish":
            from mindfed.cli import finish  # noqa: PLC0415

            return finish.run(args)
        if args.command == "certs":
            from mindfed.cli import certs  # noqa: PLC0415

            return certs.run(args)
        if args.command == "demo":
            from mindfed.cli import demo  # noqa: PLC0415

            return demo.run(args)
        from mindfed.cli import config_check  # noqa: PLC0415

        return config_check.main([args.file, *(f"--set={item}" for item in args.set)])
    except (ConfigError, ModelFormatError, CacheError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
