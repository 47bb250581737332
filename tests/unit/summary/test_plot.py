import math
from pathlib import Path

import numpy as np
import pytest

from mindfed.summary.plot import TrainingCurves, plot_training

image = pytest.importorskip("matplotlib.image")

RECORDS: list[dict[str, object]] = [
    {
        "currentIteration": 1,
        "iterationResult": "success",
        "metricsLoss": 2.0,
        "metricsAuc": 0.3,
        "testAccuracy": 0.35,
        "testLoss": 2.1,
    },
    {"currentIteration": 2, "iterationResult": "fail", "metricsLoss": 0.0, "metricsAuc": 0.0},
    {
        "currentIteration": 3,
        "iterationResult": "success",
        "metricsLoss": 1.2,
        "metricsAuc": None,
        "testAccuracy": 0.6,
        "testLoss": 1.3,
    },
]


def test_curves_follow_records_with_gaps_for_missing_values() -> None:
    # Execute
    curves = TrainingCurves.from_records(RECORDS)

    # Assert
    assert curves.iterations == (1.0, 2.0, 3.0)
    assert curves.failed == (2.0,)
    assert curves.train_loss == (2.0, 0.0, 1.2)
    assert curves.test_accuracy[0] == 0.35
    assert math.isnan(curves.test_accuracy[1])
    assert curves.test_accuracy[2] == 0.6
    assert math.isnan(curves.client_accuracy[2])
    assert math.isnan(curves.test_loss[1])


def test_curves_number_lines_without_iteration() -> None:
    curves = TrainingCurves.from_records([{"metricsLoss": 1.0}, {"metricsLoss": 0.5}])

    assert curves.iterations == (1.0, 2.0)


def test_plot_training_writes_a_png_with_content(tmp_path: Path) -> None:
    # Execute
    path = plot_training(RECORDS, tmp_path / "plots" / "training.png")

    # Assert
    assert path == tmp_path / "plots" / "training.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(path)
    assert pixels.shape[:2] == (700, 800)
    assert not np.allclose(pixels[..., :3], 1.0)


def test_failed_iterations_are_shaded(tmp_path: Path) -> None:
    # Prepare
    all_ok = [dict(r, iterationResult="success") for r in RECORDS]

    # Execute
    with_failure = image.imread(plot_training(RECORDS, tmp_path / "a.png"))
    without = image.imread(plot_training(all_ok, tmp_path / "b.png"))

    # Assert: the red band (and its legend entry) adds reddish pixels.
    def reddish(pixels: np.ndarray) -> int:
        red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        return int(np.count_nonzero((red > 0.9) & (green < 0.85) & (blue < 0.85) & (red - green > 0.1)))

    assert reddish(with_failure) > reddish(without) + 1000


def test_plot_of_no_records_still_writes_a_file(tmp_path: Path) -> None:
    assert plot_training([], tmp_path / "empty.png").stat().st_size > 0
