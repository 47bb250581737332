"""MindSpore's hybrid worker launcher (tests/st/hybrid_cloud/run_hybrid_train_worker.py): start
`--local_worker_num` hybrid workers in the background and return.

    python run_hybrid_train_worker.py --yaml_config=yamls/hybrid.yaml --dataset_path=cloud.npz --sync_type=fixed

Each worker logs to logs/worker_{i}/worker.log, shows in the scheduler's /state as a WORKER, and retrains every
devices' aggregate on --dataset_path (an .npz with x and y; default: the offline digits) for one epoch, pushing it back
with its loss and accuracy. Stop them with ../cross_device_lenet_femnist/finish_cloud.py --redis_port=PORT, or by PID.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yaml_config", default="yamls/hybrid.yaml")
    parser.add_argument("--device_target", default="CPU", choices=["CPU", "GPU"])
    parser.add_argument("--fl_iteration_num", type=int, default=0)
    parser.add_argument("--client_batch_size", type=int, default=32)
    parser.add_argument("--client_learning_rate", type=float, default=0.01)
    parser.add_argument("--dataset_path", default="")
    parser.add_argument("--sync_type", default="fixed", choices=["fixed", "adaptive"])
    parser.add_argument("--local_worker_num", type=int, default=1)
    parser.add_argument("--log_dir", default="logs")
    args = parser.parse_args()
    if args.local_worker_num < 1:
        print("error: The local worker number should not <= 0.", file=sys.stderr)
        return 2
    for i in range(args.local_worker_num):
        log_dir = Path(args.log_dir) / f"worker_{i}"
        log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "mindfed.cli.main", "worker", "--yaml_config", args.yaml_config,
               "--device_target", args.device_target, "--fl_iteration_num", str(args.fl_iteration_num),
               "--client_batch_size", str(args.client_batch_size),
               "--client_learning_rate", str(args.client_learning_rate), "--sync_type", args.sync_type,
               "--num_class", "10", "--seed", str(i)]
        if args.dataset_path:
            cmd += ["--dataset_path", args.dataset_path]
        with (log_dir / "worker.log").open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        print(f"worker {i}: pid {proc.pid}, log {log_dir / 'worker.log'}")
        time.sleep(0.3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
