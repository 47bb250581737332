"""The seed's finish_cloud.py: stop the whole cluster that uses the Redis on --redis_port.

    python finish_cloud.py --redis_port=23456

Prints `killed PID` for every process stopped: the mindfed schedulers, servers and launchers of that Redis, and the
redis-server itself (see `mindfed finish`, which this is).
"""

from __future__ import annotations

import sys

from mindfed.cli.finish import main

if __name__ == "__main__":
    sys.exit(main())
