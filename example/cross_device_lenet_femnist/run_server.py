"""The seed's launcher: start `local_server_num` FL servers on consecutive HTTP ports, in the background.

    python run_server.py --yaml_config="yamls/lenet.yaml" --tcp_server_ip="127.0.0.1" \
        --checkpoint_dir="fl_ckpt" --local_server_num=1 --http_server_address="127.0.0.1:6666"

Each server logs to logs/server_{port}/server.log; this script returns once they are started (as MindSpore's does).
Stop them with Ctrl-C in `mindfed server` (the foreground variant) or by their PIDs, printed below.
The initial model is a LeNet-5(62, 3) like the seed's, or --model Lenet.ckpt (weight-based start).
"""

from __future__ import annotations

import argparse
import sys

from mindfed.cli.server import add_launch_arguments, launch_from_args
from mindfed.config import load
from mindfed.errors import ConfigError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_launch_arguments(parser)
    args = parser.parse_args()
    try:
        if load(args.yaml_config).distributed_cache.is_embedded:
            raise ConfigError(f"{args.yaml_config}: distributed_cache.address is empty; background servers need a "
                              "Redis that outlives this script (e.g. `redis-server --port 23456 --save \"\"`), or "
                              "use `mindfed server`, which runs an embedded one in the foreground")
        launch = launch_from_args(args, detach=True)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for proc, address in zip(launch.processes, launch.http_addresses(), strict=True):
        print(f"started server pid {proc.pid} on http://{address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
