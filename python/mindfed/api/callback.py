"""MindSpore Federated's server `Callback` and `CallbackContext` (spec §1.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Callback:
    """Subclass and override; FLServerJob.run calls these on the server's own process.

    A callback that raises is logged and ignored, as in MindSpore.
    """

    def after_started(self) -> None:
        """Called once the server has joined the cluster and serves devices."""

    def before_stopped(self) -> None:
        """Called after SIGTERM/SIGINT, once the server has left the cluster (MindSpore's name, its order)."""

    def on_iteration_end(self, context: CallbackContext) -> None:
        """Called on the one server that wrote the iteration's summary line, after the recovery checkpoint.

        Args:
            context: what the iteration left behind.
        """


@dataclass(slots=True)
class CallbackContext:
    """What `on_iteration_end` receives; positional order is MindSpore's.

    Attributes:
        feature_map: FeatureMap of the model the iteration ended with (all features, require_aggr kept).
        checkpoint_file: the recovery checkpoint written for it, or "" when none was written.
        fl_name: the job's name.
        instance_name: the instance the iteration belongs to.
        iteration_num: the iteration that ended.
        iteration_valid: whether it produced a new model (False: failed, the model was carried forward).
        iteration_result: the reason text (MindSpore's texts: "Weight aggregation finished! ..." or a timeout reason).
    """

    feature_map: Any
    checkpoint_file: str
    fl_name: str
    instance_name: str
    iteration_num: int
    iteration_valid: bool
    iteration_result: str
