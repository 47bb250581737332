"""One server process: `python -m mindfed.cli.server_process --yaml_config F --http_server_address ip:port ...`.

`mindfed server` (the seed's run_server.py) starts one of these per port; it can also be run by hand, and
process supervisors (systemd, Kubernetes) run it directly. The YAML is loaded once here; `ServerNode` runs the
capability check once. Its flags are declared here and nowhere else: `mindfed server` takes the same ones and
passes them on (`forwarded_argv`). With `enable_ssl: true` the p12 passwords come from MINDFED_SSL_SERVER_PASSWORD and
MINDFED_SSL_CLIENT_PASSWORD (or *_FILE naming a file), which the launcher's children inherit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from mindfed.cli.exit_codes import CONFIG_ERROR, OK, SERVER_CACHE_UNREACHABLE
from mindfed.config import FLConfig, load
from mindfed.errors import CacheError, ConfigError, ModelFormatError
from mindfed.runtime.fd_limit import raise_fd_limit
from mindfed.runtime.logs import add_log_format_argument, configure_logging
from mindfed.runtime.until_signalled import run_until_signalled
from mindfed.server.on_stop import FAIL_ITERATION, ON_STOP_CHOICES
from mindfed.server.update_log import UPDATE_LOG_MODES
from mindfed.tls.passwords import CLIENT_PASSWORD_ENV, SERVER_PASSWORD_ENV, password_from_env

# Flags the launcher sets itself for each process (`ServerLaunch`), so `forwarded_argv` leaves them out.
SET_BY_LAUNCHER = frozenset({"yaml_config", "http_server_address", "cache_address", "tcp_server_port"})


def tcp_port(text: str) -> int:
    """--tcp_server_port: 0 (a free port) to 65535."""
    if not text.isdigit() or int(text) > 65535:  # noqa: PLR2004 - the largest TCP port
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0: a free one, up to 65535)")
    return int(text)


def add_process_arguments(parser: argparse.ArgumentParser, *, address_default: str | None = None) -> None:
    """The flags of one server process (the seed's run_server.py flags and ours); `address_default` None makes
    --http_server_address required."""
    parser.add_argument("--yaml_config", required=True, help="the job's YAML (the seed's schema)")
    parser.add_argument("--http_server_address", required=address_default is None, default=address_default,
                        help="ip:port devices post to" + (f" (default {address_default})" if address_default else ""))
    parser.add_argument("--tcp_server_ip", default="",
                        help="the address of the server-to-server TCP endpoint that the other servers connect to "
                        "(IPv4, IPv6 or a host name, resolved at start; never 0.0.0.0 or ::); default: this host's "
                        "first non-loopback IPv4 address (loopback when there is none)")
    parser.add_argument("--tcp_server_port", type=tcp_port, default=0,
                        help="the port of the server-to-server TCP endpoint (default 0: a free one); `mindfed "
                        "server` gives its servers consecutive ports from this one")
    parser.add_argument("--checkpoint_dir", default="./fl_ckpt/",
                        help="recovery checkpoints, read at start and written after each iteration; '' disables them")
    parser.add_argument("--cache_address", default="", help="Redis ip:port overriding distributed_cache.address")
    parser.add_argument("--heartbeat_ttl_s", type=int, default=10,
                        help="a server silent this long is taken for dead and its updates are taken over")
    parser.add_argument("--update_log", choices=UPDATE_LOG_MODES, default="on",
                        help="before acknowledging an update: on, log its body in Redis; replica, copy it to a live "
                        "peer server and log a marker in Redis (one server may die at a time; large bodies stay off "
                        "Redis); off, nothing (a killed server loses the updates since its last checkpoint, at most "
                        "about a second's)")
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
    add_log_format_argument(parser)


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
                            tcp_server_ip=args.tcp_server_ip, tcp_server_port=args.tcp_server_port,
                            checkpoint_dir=args.checkpoint_dir or None, output_dir=Path(args.output_dir),
                            heartbeat_ttl_s=args.heartbeat_ttl_s, update_log=args.update_log,
                            stop_fails_iteration=args.on_stop == FAIL_ITERATION,
                            # enable_ssl: the p12 passwords come from the environment, never from a flag (ps)
                            ssl_server_password=password_from_env(SERVER_PASSWORD_ENV),
                            ssl_client_password=password_from_env(CLIENT_PASSWORD_ENV))
    # the node alone holds the initial model, and lets go of it once iterations have replaced it
    node = ServerNode(config, initial_model(args.model, args.num_classes, args.num_channels,
                                            [n for n in args.no_aggr.split(",") if n]), options)
    await run_until_signalled(node)


FD_HEADROOM = 1024  # Redis pools, peers, log files, the interpreter's own


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mindfed.cli.server_process", description=__doc__)
    add_process_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(log_format=args.log_format)
    try:
        config = load_config(args)
        # a socket per device in flight, plus Redis and peers (inherited by an embedded redis-server)
        raise_fd_limit(config.client.connection_num + FD_HEADROOM)
        asyncio.run(serve(args, config))
    except (ConfigError, ModelFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    except CacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return SERVER_CACHE_UNREACHABLE
    return OK


if __name__ == "__main__":
    sys.exit(main())
