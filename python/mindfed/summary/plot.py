"""A PNG of a training run from its metrics lines: accuracy and loss per iteration."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# One figure in the Figure/Agg object API, never pyplot: no display is needed, and the
# process-wide backend and pyplot's global figure list are left alone, so a server can
# plot from any thread without leaking figures.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _number(value: object) -> float:
    # Missing keys and nulls (nlohmann's NaN) plot as gaps.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


@dataclass(frozen=True, slots=True)
class TrainingCurves:
    """The series drawn by :func:`plot_training`, one entry per metrics line.

    Attributes:
        iterations: ``currentIteration`` of each line.
        test_accuracy: ``testAccuracy`` (server-side test set), NaN where absent.
        client_accuracy: ``metricsAuc`` (devices' own evaluation), NaN where absent.
        train_loss: ``metricsLoss``, NaN where absent.
        test_loss: ``testLoss``, NaN where absent.
        failed: Iterations whose ``iterationResult`` is ``"fail"``.
    """

    iterations: tuple[float, ...]
    test_accuracy: tuple[float, ...]
    client_accuracy: tuple[float, ...]
    train_loss: tuple[float, ...]
    test_loss: tuple[float, ...]
    failed: tuple[float, ...]

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, object]]) -> TrainingCurves:
        """Extracts the series from metrics lines (as :func:`metrics_file.read_all` gives).

        Args:
            records: Metrics lines; lines of several instances may follow each other.

        Returns:
            The series in line order; x is the line's ``currentIteration``, or its
            1-based position when that is missing.
        """
        iterations = tuple(_number(r.get("currentIteration", position)) for position, r in enumerate(records, start=1))

        def series(key: str) -> tuple[float, ...]:
            return tuple(_number(r.get(key)) for r in records)

        failed = tuple(x for x, r in zip(iterations, records, strict=True) if r.get("iterationResult") == "fail")
        return cls(
            iterations=iterations,
            test_accuracy=series("testAccuracy"),
            client_accuracy=series("metricsAuc"),
            train_loss=series("metricsLoss"),
            test_loss=series("testLoss"),
            failed=failed,
        )


def _has_data(values: Sequence[float]) -> bool:
    return any(not math.isnan(v) for v in values)


def plot_training(records: Sequence[Mapping[str, object]], png_path: str | os.PathLike[str]) -> Path:
    """Draws accuracy (top) and loss (bottom) per iteration, failed iterations shaded red.

    Args:
        records: Metrics lines, oldest first.
        png_path: Where to write the PNG; parent folders are made.

    Returns:
        The PNG path.

    Raises:
        OSError: The file cannot be written.
    """
    curves = TrainingCurves.from_records(records)
    figure = Figure(figsize=(8, 7), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    accuracy_axes, loss_axes = figure.subplots(2, 1, sharex=True)

    for axes, lines in (
        (
            accuracy_axes,
            (("test accuracy", curves.test_accuracy), ("client accuracy (metricsAuc)", curves.client_accuracy)),
        ),
        (loss_axes, (("training loss (metricsLoss)", curves.train_loss), ("test loss", curves.test_loss))),
    ):
        for label, values in lines:
            if _has_data(values):
                axes.plot(curves.iterations, values, marker=".", label=label)
        for index, x in enumerate(curves.failed):
            axes.axvspan(x - 0.5, x + 0.5, color="tab:red", alpha=0.2, label="failed iteration" if index == 0 else None)
        axes.grid(visible=True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="best")

    accuracy_axes.set_ylabel("accuracy")
    accuracy_axes.set_title("accuracy per iteration")
    loss_axes.set_ylabel("loss")
    loss_axes.set_xlabel("iteration")
    loss_axes.set_title("loss per iteration")

    path = Path(png_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
