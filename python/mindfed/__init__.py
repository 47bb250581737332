"""mindfed: a horizontal federated-learning cluster, wire-compatible with MindSpore Federated devices."""

__version__ = "0.1.0"

# The MindSpore-compatible job API (`from mindfed import FLServerJob`), loaded on first use so that `import mindfed`
# stays fast and pulls in neither numpy nor the server.
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ below imports mindfed.api
    from mindfed.api import Callback as Callback
    from mindfed.api import CallbackContext as CallbackContext
    from mindfed.api import FeatureItem as FeatureItem
    from mindfed.api import FeatureMap as FeatureMap
    from mindfed.api import FederatedLearningManager as FederatedLearningManager
    from mindfed.api import FlSchedulerJob as FlSchedulerJob
    from mindfed.api import FLServerJob as FLServerJob
    from mindfed.api import PushMetrics as PushMetrics
    from mindfed.api import SSLConfig as SSLConfig
    from mindfed.api import log as log

_JOB_API = frozenset({"FLServerJob", "FlSchedulerJob", "FeatureMap", "FeatureItem", "Callback", "CallbackContext",
                      "SSLConfig", "log", "FederatedLearningManager", "PushMetrics"})


def __getattr__(name: str) -> object:
    if name in _JOB_API:
        import mindfed.api  # noqa: PLC0415

        return getattr(mindfed.api, name)
    raise AttributeError(f"module 'mindfed' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_JOB_API])
