"""`mindfed server`: N servers on consecutive ports, in the foreground; Ctrl-C stops them all cleanly; SIGHUP is
passed on to them (each reloads its TLS files)."""

from __future__ import annotations

import argparse
import logging
import signal
import time
from pathlib import Path

from mindfed.cli.exit_codes import INTERRUPTED, SERVER_CHILD_FAILED
from mindfed.cli.launcher import ServerLaunch
from mindfed.cli.server_process import add_process_arguments, forwarded_argv

logger = logging.getLogger(__name__)
DEFAULT_HTTP_SERVER_ADDRESS = "127.0.0.1:6666"


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of each server process (the seed's run_server.py flags and ours), plus the launcher's own."""
    add_process_arguments(parser, address_default=DEFAULT_HTTP_SERVER_ADDRESS)
    parser.add_argument("--local_server_num", type=int, default=1,
                        help="servers to start, on consecutive ports from --http_server_address's")
    parser.add_argument("--log_dir", default="logs", help="each server logs to LOG_DIR/server_{port}/server.log")


def launch_from_args(args: argparse.Namespace, detach: bool = False) -> ServerLaunch:
    launch = ServerLaunch(yaml_config=args.yaml_config, http_server_address=args.http_server_address,
                          local_server_num=args.local_server_num, log_dir=Path(args.log_dir),
                          process_args=forwarded_argv(args), cache_address=args.cache_address, detach=detach,
                          tcp_server_port=args.tcp_server_port)
    launch.start()
    return launch


def run(args: argparse.Namespace) -> int:
    launch = launch_from_args(args)
    stop = {"signal": 0}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: stop.__setitem__("signal", s))
    signal.signal(signal.SIGHUP, lambda _s, _f: launch.reload_tls())  # certificate rotation, not a stop
    try:
        while not stop["signal"]:
            exited = launch.poll_failed()
            if exited:
                pid, code = exited[0]
                logger.error("server pid %d exited with code %s; see its log under %s", pid, code, args.log_dir)
                return SERVER_CHILD_FAILED
            time.sleep(0.2)
        return INTERRUPTED if stop["signal"] == signal.SIGINT else 0
    finally:
        launch.stop()
