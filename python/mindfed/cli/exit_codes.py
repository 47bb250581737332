"""Process exit codes (0-255), one range per role where they fit, so a supervisor can tell who failed and why.

Config errors use 78, sysexits' EX_CONFIG: STYLE.md's "5xx" cannot be a process exit status.
"""

OK = 0
USAGE_ERROR = 2  # argparse's own, for bad flags
CONFIG_ERROR = 78
INTERRUPTED = 130
SERVER_CACHE_UNREACHABLE = 201
SERVER_CHILD_FAILED = 202
WORKER_FAILED = 211  # no server answered, or a server refused the worker's weights
WORKER_CHILD_FAILED = 212  # a worker process of `mindfed worker --local_worker_num N` died
WORKER_SYNC_FAILED = 213  # a cross-silo worker gave up: its server did not answer within the round deadline
