"""Process exit codes, one range per role, so a supervisor can tell who failed and why (STYLE.md §8)."""

OK = 0
INTERRUPTED = 130
SERVER_CACHE_UNREACHABLE = 201
SERVER_CHILD_FAILED = 202
CLIENT_FAILED = 401
DEMO_TARGET_MISSED = 402
CONFIG_ERROR = 501
