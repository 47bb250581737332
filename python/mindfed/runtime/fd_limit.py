"""Open-file limits: a server holds a socket per device in flight (client.connection_num is 10,000 in the seed's
YAML) and Redis one per server connection, while a default soft limit is often 1,024."""

from __future__ import annotations

import logging
import resource

logger = logging.getLogger(__name__)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to `wanted` (at most the hard limit); returns the limit in force.

    Children started afterwards (an embedded redis-server) inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        logger.warning("open-file limit %d is below the %d connections configured: devices beyond it are refused "
                       "by the kernel (raise `ulimit -n`)", soft, wanted)
    return int(soft)
