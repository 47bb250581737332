"""The scheduler: MindSpore Federated's management REST API (spec §6.1) over the job's state in Redis.

Stateless: everything it reports or changes lives in Redis, so it can be restarted (or run twice) at any time.
"""

from mindfed.scheduler.address import validate_manage_address
from mindfed.scheduler.app import SchedulerApp, run_scheduler

__all__ = ["SchedulerApp", "run_scheduler", "validate_manage_address"]
