"""The MindSpore-compatible Python job API: change `mindspore_federated` to `mindfed` and keep the launch code.

```python
from mindfed import FLServerJob, FeatureMap
fm = FeatureMap()
fm.add_feature("conv.weight", np.zeros((6, 3, 5, 5), np.float32))
fm.add_feature("bn.moving_mean", np.zeros(6, np.float32), require_aggr=False)
FLServerJob("job.yaml", "127.0.0.1:6666").run(feature_map=fm)   # blocks until SIGTERM/SIGINT
```

The worker API (`FederatedLearningManager`, `PushMetrics`, mindfed.worker.manager) needs torch; it is loaded on first
use so that the server and scheduler jobs never load torch.
"""

from typing import TYPE_CHECKING

from mindfed.api import log
from mindfed.api.callback import Callback, CallbackContext
from mindfed.api.errors import JobConfigError, JobError, JobTypeError, JobValueError
from mindfed.api.feature_map import FeatureItem, FeatureMap
from mindfed.api.scheduler_job import FlSchedulerJob
from mindfed.api.server_job import FLServerJob
from mindfed.api.ssl_config import SSLConfig

if TYPE_CHECKING:
    from mindfed.worker.manager import FederatedLearningManager as FederatedLearningManager
    from mindfed.worker.manager import PushMetrics as PushMetrics

_WORKER_API = frozenset({"FederatedLearningManager", "PushMetrics"})

__all__ = ["Callback", "CallbackContext", "FLServerJob", "FeatureItem", "FeatureMap", "FederatedLearningManager",
           "FlSchedulerJob", "JobConfigError", "JobError", "JobTypeError", "JobValueError", "PushMetrics", "SSLConfig",
           "log"]


def __getattr__(name: str) -> object:
    if name in _WORKER_API:
        from mindfed.worker import manager  # noqa: PLC0415 - torch, only for workers

        return getattr(manager, name)
    raise AttributeError(f"module 'mindfed.api' has no attribute {name!r}")
