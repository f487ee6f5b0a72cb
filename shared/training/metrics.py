"""Holdout metrics per task. Challenger and champion are scored by the same code on the same rows."""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("rmse", "mae", "r2"),
    "binary": ("roc_auc", "accuracy", "f1", "log_loss"),
    "multiclass": ("f1_macro", "accuracy", "log_loss"),
}
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss"})


def greater_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class Outputs:
    """What a model said about each holdout row; every metric, point or bootstrap, is computed from this.

    `known` are the sorted classes of the dataset and of the model; `probabilities` has one column per known
    class; `positive_score` is the binary task's ranking score (probability or decision function)."""

    predicted: np.ndarray
    probabilities: np.ndarray | None = None
    positive_score: np.ndarray | None = None
    known: list[Any] = field(default_factory=list)


def score(task: str, model: Any, features: pd.DataFrame, target: pd.Series, labels: Sequence[Any]) -> dict:
    """Every metric of the task that can be measured; one that cannot (say, ROC AUC on a holdout with a single
    class) is left out with a warning on stderr, and the caller decides whether that is fatal.

    `labels` are the sorted classes of the whole dataset; in a binary task the last is the positive class.
    """
    return score_outputs(task, outputs(task, model, features, labels), target.to_numpy(), labels)


def outputs(task: str, model: Any, features: pd.DataFrame, labels: Sequence[Any]) -> Outputs:
    import numpy as np

    predicted = np.asarray(model.predict(features))
    if task == "regression":
        return Outputs(predicted.astype(np.float64))
    known = _sorted_union(labels, getattr(model, "classes_", ()))
    probabilities = _probabilities(model, features, known)
    positive_score = None
    if task == "binary":
        positive = labels[-1]
        if probabilities is not None:
            positive_score = probabilities[:, known.index(positive)]
        elif hasattr(model, "decision_function") and list(getattr(model, "classes_", []))[-1:] == [positive]:
            positive_score = np.asarray(model.decision_function(features), dtype=np.float64)
    return Outputs(predicted, probabilities, positive_score, known)


def score_outputs(task: str, result: Outputs, truth: np.ndarray, labels: Sequence[Any]) -> dict[str, float]:
    if task == "regression":
        measures = _regression(truth, result.predicted)
    elif task == "binary":
        measures = _binary(truth, result, positive=labels[-1])
    else:
        measures = _multiclass(truth, result)
    scores = {}
    for name in TASK_METRICS[task]:
        compute = measures.get(name)
        if compute is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = float(compute())
        except ValueError as error:
            print(f"warning: {name} could not be measured: {error}", file=sys.stderr)
            continue
        if not math.isfinite(value):
            print(f"warning: {name} is {value} on this holdout, left out", file=sys.stderr)
            continue
        scores[name] = value
    return scores


def _regression(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Callable[[], float]]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": lambda: math.sqrt(mean_squared_error(truth, predicted)),
        "mae": lambda: mean_absolute_error(truth, predicted),
        "r2": lambda: r2_score(truth, predicted) if len(truth) > 1 else math.nan,
    }


def _binary(truth: np.ndarray, result: Outputs, positive: Any) -> dict[str, Callable[[], float]]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    predicted, is_positive = result.predicted, truth == positive
    measures: dict[str, Callable[[], float]] = {
        "accuracy": lambda: accuracy_score(truth, predicted),
        "f1": lambda: f1_score(is_positive, predicted == positive, zero_division=0.0),
    }
    if result.positive_score is not None:
        measures["roc_auc"] = lambda: roc_auc_score(is_positive, result.positive_score)
    if result.probabilities is not None:
        measures["log_loss"] = lambda: log_loss(truth, result.probabilities, labels=result.known)
    return measures


def _multiclass(truth: np.ndarray, result: Outputs) -> dict[str, Callable[[], float]]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    predicted = result.predicted
    measures: dict[str, Callable[[], float]] = {
        "f1_macro": lambda: f1_score(truth, predicted, average="macro", zero_division=0.0),
        "accuracy": lambda: accuracy_score(truth, predicted),
    }
    if result.probabilities is not None:
        measures["log_loss"] = lambda: log_loss(truth, result.probabilities, labels=result.known)
    return measures


def _probabilities(model: Any, features: pd.DataFrame, known: list[Any]) -> np.ndarray | None:
    """Class probabilities with one column per known label; a class the model never saw gets probability 0,
    so a champion from before a new class appeared is still scored, and fairly punished."""
    import numpy as np

    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        return None
    raw = np.asarray(model.predict_proba(features), dtype=np.float64)
    aligned = np.zeros((raw.shape[0], len(known)), dtype=np.float64)
    for column, label in enumerate(model.classes_):
        aligned[:, known.index(label)] = raw[:, column]
    return aligned


def _sorted_union(*groups: Sequence[Any]) -> list[Any]:
    values = {value.item() if hasattr(value, "item") else value for group in groups for value in group}
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=repr)
