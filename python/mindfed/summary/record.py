"""One iteration's summary: everything a line of MindSpore's ``metrics_file`` holds (spec §9)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from mindfed.summary.timestamps import format_millis

#: The top-level keys MindSpore writes; ``extra`` may not reuse them.
METRICS_KEYS = frozenset(
    {
        "clientVisitedInfo",
        "currentIteration",
        "endTime",
        "flIterationNum",
        "flName",
        "instanceName",
        "instanceStatus",
        "iterationExecutionTime",
        "iterationResult",
        "metricsAuc",
        "metricsLoss",
        "startTime",
        "unsupervisedEval",
    }
)


class InstanceStatus(StrEnum):
    """The ``instanceStatus`` values; the literals are MindSpore's."""

    RUNNING = "running"
    DISABLE = "disable"
    FINISH = "finish"


class IterationResult(StrEnum):
    """The ``iterationResult`` values; the literals are MindSpore's."""

    SUCCESS = "success"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class RoundVisits:
    """Responses one round sent during an iteration, summed over servers.

    Attributes:
        total: Every response sent (success or not).
        accept: Responses that were successes.
    """

    total: int = 0
    accept: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.accept <= self.total:
            raise ValueError(f"round visits need 0 <= accept <= total, got accept={self.accept} total={self.total}")

    @property
    def reject(self) -> int:
        """Responses that were not successes (``total - accept``)."""
        return self.total - self.accept

    def __add__(self, other: RoundVisits) -> RoundVisits:
        """Sums two servers' counts for the same round."""
        return RoundVisits(self.total + other.total, self.accept + other.accept)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


def _json_safe(value: object) -> object:
    # nlohmann::json prints NaN and infinities as null; Python would print the invalid
    # tokens NaN/Infinity, which break every strict JSON reader of the metrics file.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationSummary:
    """The cluster-wide summary of one finished iteration.

    Sums are kept rather than averages so per-server partial summaries can be added before
    the division. For HYBRID_TRAINING, where the worker pushes a ready loss, pass
    ``loss_sum=loss, data_size_sum=1`` (and likewise for accuracy).

    Attributes:
        fl_name: The job name (``fl_name`` in the YAML).
        instance_name: The instance the iteration belongs to.
        fl_iteration_num: Iterations configured for the instance.
        current_iteration: The iteration that just finished (1-based).
        instance_status: Instance state after the iteration.
        iteration_result: Whether the iteration produced a new model.
        start_time: The first startFLJob of the iteration; None when no device came, in
            which case ``startTime`` shows ``end_time`` and the execution time is 0.
        end_time: When the iteration ended.
        start_fl_job: startFLJob responses.
        update_model: updateModel responses.
        get_model: getModel responses.
        get_result: getResult responses.
        participation_level1: Accepted updates that came within the first threshold.
        participation_level2: Accepted updates that came within the second threshold.
        participation_level3: All accepted updates.
        loss_sum: Sum over updates of ``upload_loss * data_size``.
        data_size_sum: Sum over updates of ``data_size``.
        accuracy_sum: Sum over updates of ``upload_accuracy * eval_data_size``.
        eval_data_size_sum: Sum over updates of ``eval_data_size``.
        unsupervised_eval: The unsupervised clustering score (0.0 when not evaluated).
        extra: Our own fields appended to the line (e.g. ``testAccuracy``, bytes moved);
            keys may not collide with MindSpore's.
    """

    fl_name: str
    instance_name: str
    fl_iteration_num: int
    current_iteration: int
    instance_status: InstanceStatus
    iteration_result: IterationResult
    start_time: datetime | None
    end_time: datetime
    start_fl_job: RoundVisits = RoundVisits()
    update_model: RoundVisits = RoundVisits()
    get_model: RoundVisits = RoundVisits()
    get_result: RoundVisits = RoundVisits()
    participation_level1: int = 0
    participation_level2: int = 0
    participation_level3: int = 0
    loss_sum: float = 0.0
    data_size_sum: float = 0.0
    accuracy_sum: float = 0.0
    eval_data_size_sum: float = 0.0
    unsupervised_eval: float = 0.0
    extra: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accept the plain literals too; a bad one raises ValueError naming it.
        object.__setattr__(self, "instance_status", InstanceStatus(self.instance_status))
        object.__setattr__(self, "iteration_result", IterationResult(self.iteration_result))
        clashes = sorted(METRICS_KEYS.intersection(self.extra))
        if clashes:
            raise ValueError(f"extra metrics keys {clashes} would overwrite MindSpore's keys")
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @property
    def metrics_loss(self) -> float:
        """Data-size-weighted mean upload loss; 0.0 when no data was reported."""
        return _ratio(self.loss_sum, self.data_size_sum)

    @property
    def metrics_auc(self) -> float:
        """Eval-size-weighted mean upload accuracy; 0.0 when no eval data was reported."""
        return _ratio(self.accuracy_sum, self.eval_data_size_sum)

    @property
    def execution_time_ms(self) -> int:
        """Milliseconds from the first startFLJob to the iteration end (0 without a start)."""
        if self.start_time is None:
            return 0
        return int((self.end_time - self.start_time).total_seconds() * 1000)

    def client_visited_info(self) -> dict[str, int]:
        """The ``clientVisitedInfo`` map with MindSpore's key names."""
        info: dict[str, int] = {}
        rounds = {
            "startFLJob": self.start_fl_job,
            "updateModel": self.update_model,
            "getModel": self.get_model,
            "getResult": self.get_result,
        }
        for name, visits in rounds.items():
            info[f"{name}TotalClientNum"] = visits.total
            info[f"{name}AcceptClientNum"] = visits.accept
            info[f"{name}RejectClientNum"] = visits.reject
        info["participationTimeLevel1"] = self.participation_level1
        info["participationTimeLevel2"] = self.participation_level2
        info["participationTimeLevel3"] = self.participation_level3
        return info

    def to_json_dict(self) -> dict[str, object]:
        """The metrics line as a dict: exactly MindSpore's keys, then the ``extra`` ones.

        Returns:
            A JSON-ready dict; non-finite floats become None (nlohmann prints them as null).
        """
        start = self.start_time if self.start_time is not None else self.end_time
        line: dict[str, object] = {
            "clientVisitedInfo": self.client_visited_info(),
            "currentIteration": self.current_iteration,
            "endTime": format_millis(self.end_time),
            "flIterationNum": self.fl_iteration_num,
            "flName": self.fl_name,
            "instanceName": self.instance_name,
            "instanceStatus": str(self.instance_status),
            "iterationExecutionTime": self.execution_time_ms,
            "iterationResult": str(self.iteration_result),
            "metricsAuc": self.metrics_auc,
            "metricsLoss": self.metrics_loss,
            "startTime": format_millis(start),
            "unsupervisedEval": float(self.unsupervised_eval),
        }
        line.update(self.extra)
        safe = _json_safe(line)
        assert isinstance(safe, dict)  # a Mapping in gives a dict out
        return safe
