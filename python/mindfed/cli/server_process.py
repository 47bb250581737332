"""One server process: `python -m mindfed.cli.server_process --yaml_config F --http_server_address ip:port ...`.

`mindfed server` (the seed's run_server.py) starts one of these per port; it can also be run by hand, and
process supervisors (systemd, Kubernetes) run it directly. The YAML is loaded once here; `ServerNode` runs the
capability check once. Its flags are declared here and nowhere else: `mindfed server` takes the same ones and
passes them on (`forwarded_argv`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from mindfed.cli.exit_codes import CONFIG_ERROR, OK, SERVER_CACHE_UNREACHABLE
from mindfed.config import FLConfig, load
from mindfed.errors import CacheError, ConfigError, ModelFormatError
from mindfed.runtime.logs import configure_logging
from mindfed.runtime.until_signalled import run_until_signalled
from mindfed.server.on_stop import FAIL_ITERATION, ON_STOP_CHOICES

# Flags the launcher sets itself for each process (`ServerLaunch`), so `forwarded_argv` leaves them out.
SET_BY_LAUNCHER = frozenset({"yaml_config", "http_server_address", "cache_address"})


def add_process_arguments(parser: argparse.ArgumentParser, *, address_default: str | None = None) -> None:
    """The flags of one server process (the seed's run_server.py flags and ours); `address_default` None makes
    --http_server_address required."""
    parser.add_argument("--yaml_config", required=True, help="the job's YAML (the seed's schema)")
    parser.add_argument("--http_server_address", required=address_default is None, default=address_default,
                        help="ip:port devices post to" + (f" (default {address_default})" if address_default else ""))
    parser.add_argument("--tcp_server_ip", default="127.0.0.1",
                        help="ip of the server-to-server TCP endpoint (its port is ephemeral)")
    parser.add_argument("--checkpoint_dir", default="./fl_ckpt/",
                        help="recovery checkpoints, read at start and written after each iteration; '' disables them")
    parser.add_argument("--cache_address", default="", help="Redis ip:port overriding distributed_cache.address")
    parser.add_argument("--heartbeat_ttl_s", type=int, default=10,
                        help="a server silent this long is taken for dead and its updates are taken over")
    parser.add_argument("--update_log", choices=("on", "off"), default="on",
                        help="log each accepted update in Redis before acknowledging it (off: a killed server loses "
                        "the updates since its last checkpoint, at most about a second's)")
    parser.add_argument("--on_stop", choices=ON_STOP_CHOICES, default=FAIL_ITERATION,
                        help="a server stopped while holding updates of the running iteration fails it (MindSpore's "
                        "behaviour) or hands them over to its peers, which finish the iteration")
    parser.add_argument("--output_dir", default=".", help="where metrics_file and failure_event_file are written")
    parser.add_argument("--model", default="", help="initial weights: .ckpt, .mindir, .safetensors, .npz or a torch "
                        "state_dict; default: a LeNet-5 initialised in numpy")
    parser.add_argument("--num_classes", type=int, default=62, help="classes of the default LeNet-5 (FEMNIST: 62)")
    parser.add_argument("--num_channels", type=int, default=3, help="input channels of the default LeNet-5")
    parser.add_argument("--no_aggr", default="", help="comma-separated weight names sent to devices but never "
                        "aggregated (MindSpore's require_aggr=False)")


def forwarded_argv(args: argparse.Namespace) -> list[str]:
    """The process flags in `args` (a `mindfed server` namespace) as argv for each server process, but those the
    launcher sets itself."""
    parser = argparse.ArgumentParser(add_help=False)
    add_process_arguments(parser)
    argv: list[str] = []
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of a parser's flags
        if action.dest not in SET_BY_LAUNCHER:
            argv += [action.option_strings[0], str(getattr(args, action.dest))]
    return argv


def load_config(args: argparse.Namespace) -> FLConfig:
    """The YAML with --cache_address applied: the one load of this process."""
    config = load(args.yaml_config, {"distributed_cache.address": args.cache_address} if args.cache_address else None)
    if config.distributed_cache.is_embedded:
        raise ConfigError(f"{args.yaml_config}: distributed_cache.address is empty; a server process needs the job's "
                          "Redis address (--cache_address, or `mindfed server`, which starts an embedded Redis)")
    return config


async def serve(args: argparse.Namespace, config: FLConfig) -> None:
    from mindfed.model.initial import initial_model  # noqa: PLC0415 - numpy, aiohttp: after the flag checks
    from mindfed.server.node import ServerNode, ServerOptions  # noqa: PLC0415

    options = ServerOptions(http_server_address=args.http_server_address, config_source=args.yaml_config,
                            tcp_server_ip=args.tcp_server_ip,
                            checkpoint_dir=args.checkpoint_dir or None, output_dir=Path(args.output_dir),
                            heartbeat_ttl_s=args.heartbeat_ttl_s, update_log=args.update_log == "on",
                            stop_fails_iteration=args.on_stop == FAIL_ITERATION,
                            ssl_server_password=os.environ.get("MINDFED_SSL_SERVER_PASSWORD", ""),
                            ssl_client_password=os.environ.get("MINDFED_SSL_CLIENT_PASSWORD", ""))
    model = initial_model(args.model, args.num_classes, args.num_channels, [n for n in args.no_aggr.split(",") if n])
    await run_until_signalled(ServerNode(config, model, options))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mindfed.cli.server_process", description=__doc__)
    add_process_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        asyncio.run(serve(args, load_config(args)))
    except (ConfigError, ModelFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    except CacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return SERVER_CACHE_UNREACHABLE
    return OK


if __name__ == "__main__":
    sys.exit(main())
