"""The live metric of a model version: what it scores on the rows it served whose true values came back, with
a bootstrap interval.

The numbers are the training job's own: point values from `shared.training.metrics.score_outputs`, resampled
values from `shared.training.comparison` (the weighted formulas, equal to scikit-learn's at unit weights, and
the same draws the paired bootstrap makes), so a live metric and the holdout metric it is compared with mean
the same thing. Only predicted values are logged, so metrics that need scores (ROC AUC, log loss) cannot be
measured live; `decisions.quality.choose_metric` picks another one then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.domain.capture import PREDICTION
from shared.domain.decisions.quality import LiveMetric
from shared.domain.labels import class_order, true_value

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Sample:
    """Joined rows of one model version: true values and predictions, in canonical form, and the classes."""

    task: str
    truth: np.ndarray
    predicted: np.ndarray
    classes: list[str]

    @property
    def rows(self) -> int:
        return len(self.truth)


def prediction(task: str, outputs: dict[str, Any]) -> Any:
    """The canonical prediction of one served row: its `prediction` column, or its only column; None when the
    answer has several columns and none of them is named so (it cannot be scored)."""
    if PREDICTION in outputs:
        return true_value(task, outputs[PREDICTION])
    if len(outputs) == 1:
        return true_value(task, next(iter(outputs.values())))
    return None


def sample(task: str, truth: Sequence[Any], predicted: Sequence[Any]) -> Sample:
    import numpy as np

    if task == "regression":
        return Sample(task, np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64), [])
    classes = sorted({*truth, *predicted}, key=class_order)
    return Sample(task, np.asarray(truth, dtype=object), np.asarray(predicted, dtype=object), classes)


def points(data: Sample) -> dict[str, float]:
    """Every metric of the task that can be measured on these rows."""
    from shared.training.metrics import Outputs, score_outputs

    if data.rows == 0:
        return {}
    return score_outputs(data.task, Outputs(data.predicted, known=data.classes), data.truth, data.classes)


def interval(
    data: Sample, metric: str, value: float, *, level: float, resamples: int, seed: int
) -> LiveMetric:
    """`value` (the point metric) with its percentile bootstrap interval at `level`."""
    return intervals(data, {metric: value}, level=level, resamples=resamples, seed=seed)[metric]


def intervals(
    data: Sample, values: dict[str, float], *, level: float, resamples: int, seed: int
) -> dict[str, LiveMetric]:
    """Each metric's point value with its interval, all from the same resamples (drawn once: the draws are
    most of the cost), so each equals what `interval` gives alone."""
    import numpy as np

    from shared.training.comparison import resampled, weighted_metric
    from shared.training.metrics import Outputs

    names = list(values)
    if not names:
        return {}
    outputs = Outputs(data.predicted, known=data.classes)
    formulas = [weighted_metric(data.task, name, data.truth, outputs, data.classes) for name in names]
    drawn = resampled(lambda w: np.stack([f(w) for f in formulas], axis=1), data.rows, resamples, seed)
    tail = (1.0 - level) / 2.0
    measured = {}
    for column, name in enumerate(names):
        valid = drawn[:, column][np.isfinite(drawn[:, column])]
        if len(valid) == 0:
            measured[name] = LiveMetric(name, values[name], None, None, level, data.rows)
            continue
        low, high = np.quantile(valid, [tail, 1.0 - tail])
        measured[name] = LiveMetric(name, values[name], float(low), float(high), level, data.rows)
    return measured


def greater_is_better(metric: str) -> bool:
    """A metric's direction, from the table the training job scores with."""
    from shared.training.metrics import greater_is_better as direction

    return direction(metric)
