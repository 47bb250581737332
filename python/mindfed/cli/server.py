"""`mindfed server`: N servers on consecutive ports, in the foreground; Ctrl-C stops them all cleanly."""

from __future__ import annotations

import argparse
import logging
import signal
import time
from pathlib import Path

from mindfed.api.server_job import ON_STOP_CHOICES
from mindfed.cli.exit_codes import INTERRUPTED, SERVER_CHILD_FAILED
from mindfed.cli.launcher import ServerLaunch

logger = logging.getLogger(__name__)


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    """The seed's run_server.py flags, plus the initial-model options."""
    parser.add_argument("--yaml_config", required=True, help="YAML of the seed's schema")
    parser.add_argument("--http_server_address", default="127.0.0.1:6666", help="ip:port of the first server")
    parser.add_argument("--tcp_server_ip", default="127.0.0.1")
    parser.add_argument("--checkpoint_dir", default="./fl_ckpt/", help="recovery checkpoints; '' disables them")
    parser.add_argument("--local_server_num", type=int, default=1, help="servers to start on consecutive ports")
    parser.add_argument("--model", default="", help="initial weights (.ckpt/.safetensors/.npz/torch state_dict)")
    parser.add_argument("--num_classes", type=int, default=62)
    parser.add_argument("--num_channels", type=int, default=3)
    parser.add_argument("--no_aggr", default="", help="comma-separated weight names never aggregated "
                        "(MindSpore's require_aggr=False)")
    parser.add_argument("--on_stop", choices=ON_STOP_CHOICES, default="fail_iteration",
                        help="what stopping a server that holds updates of the running iteration does to it: fail "
                        "it (MindSpore) or hand the updates over to the other servers")
    parser.add_argument("--log_dir", default="logs")


def launch_from_args(args: argparse.Namespace, detach: bool = False) -> ServerLaunch:
    extra = ["--num_classes", str(args.num_classes), "--num_channels", str(args.num_channels),
             "--on_stop", args.on_stop]
    if args.model:
        extra += ["--model", args.model]
    if args.no_aggr:
        extra += ["--no_aggr", args.no_aggr]
    launch = ServerLaunch(yaml_config=args.yaml_config, http_server_address=args.http_server_address,
                          tcp_server_ip=args.tcp_server_ip, checkpoint_dir=args.checkpoint_dir,
                          local_server_num=args.local_server_num, log_dir=Path(args.log_dir),
                          extra_args=extra, detach=detach)
    launch.start()
    return launch


def run(args: argparse.Namespace) -> int:
    launch = launch_from_args(args)
    stop = {"signal": 0}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: stop.__setitem__("signal", s))
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
