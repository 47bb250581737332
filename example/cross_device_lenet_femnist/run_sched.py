"""The seed's scheduler launcher: start `mindfed scheduler` in the background and return.

    python run_sched.py --yaml_config="yamls/lenet.yaml" --scheduler_manage_address="127.0.0.1:11202"

The scheduler logs to logs/scheduler/scheduler.log and serves /state, /enableFLS, /disableFLS, /newInstance and
/queryInstance (curl http://127.0.0.1:11202/state). Stop it with finish_cloud.py --redis_port=PORT, or by its PID.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from mindfed.cli.scheduler import DEFAULT_MANAGE_ADDRESS, load_config
from mindfed.errors import ConfigError
from mindfed.scheduler import validate_manage_address


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yaml_config", required=True)
    parser.add_argument("--scheduler_manage_address", default=DEFAULT_MANAGE_ADDRESS)
    parser.add_argument("--cache_address", default="", help="Redis ip:port overriding distributed_cache.address")
    parser.add_argument("--log_dir", default="logs")
    args = parser.parse_args()
    try:  # fail here, not in the background process's log
        validate_manage_address(args.scheduler_manage_address)
        if load_config(args).distributed_cache.is_embedded:
            raise ConfigError(f"{args.yaml_config}: distributed_cache.address is empty; the scheduler must use the "
                              "servers' Redis (set it, or pass --cache_address ip:port)")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log_dir = Path(args.log_dir) / "scheduler"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mindfed.cli.main", "scheduler", "--yaml_config", args.yaml_config,
           "--scheduler_manage_address", args.scheduler_manage_address]
    if args.cache_address:
        cmd += ["--cache_address", args.cache_address]
    with (log_dir / "scheduler.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    print(f"started scheduler pid {proc.pid} on http://{args.scheduler_manage_address} "
          f"(log {log_dir / 'scheduler.log'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
