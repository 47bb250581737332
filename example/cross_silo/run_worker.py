"""Start the cross-silo workers: `--local_worker_num` processes, each training LeNet-5 on its own data shard.

    python run_worker.py --yaml_config=cross_silo.yaml --http_server_address=127.0.0.1:6666 --local_worker_num=2
    # FEMNIST where LEAF shards are present (server started with --num_class 62):
    python run_worker.py --yaml_config=cross_silo.yaml --http_server_address=127.0.0.1:6666 --local_worker_num=2 \
        --dataset_path=leaf/data/femnist/data/train

Logs: logs/worker_<i>.log. The digits are split non-IID (Dirichlet α = --alpha) over --local_worker_num workers.
"""

from __future__ import annotations

import sys

from mindfed.cli.worker_cross_silo import main

if __name__ == "__main__":
    sys.exit(main())
