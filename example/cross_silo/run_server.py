"""Start the cross-silo job's server(s) in the background, from a fresh LeNet-5 for the workers' data.

    redis-server --port 23456 --save ""
    python run_server.py --yaml_config=cross_silo.yaml --tcp_server_ip=127.0.0.1 --checkpoint_dir=fl_ckpt \
        --local_server_num=1 --http_server_address=127.0.0.1:6666 [--num_class 62 for FEMNIST]

CLOUD_TRAINING servers hand workers no weights at startFLJob: the workers' first window loads this model (getModel).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mindfed.model.lenet import init_lenet5

HERE = Path(__file__).resolve().parent


def main() -> int:
    argv = sys.argv[1:]
    num_class = 10
    if "--num_class" in argv:
        at = argv.index("--num_class")
        num_class = int(argv[at + 1])
        del argv[at:at + 2]
    model = init_lenet5(num_class, 1, seed=0)
    path = HERE / f"initial_lenet5_{num_class}.npz"
    np.savez(path, allow_pickle=True, **{name: model[name] for name in model.names})
    sys.argv = [sys.argv[0], *argv, "--model", str(path)]
    sys.path.insert(0, str(HERE.parent / "cross_device_lenet_femnist"))
    from run_server import main as launch  # the seed's launcher, unchanged

    return int(launch())


if __name__ == "__main__":
    sys.exit(main())
