"""Paired bootstrap of the primary metric's difference, challenger minus champion, on the same holdout rows.

Each resample draws holdout rows with replacement; both models are scored on that very draw, so the spread of
the difference reflects the rows, not two independent samples. Metrics are recomputed from the models' stored
outputs with row weights (how often each row was drawn), vectorised over resamples: a thousand resamples cost
milliseconds, and no model is called again. With unit weights every formula here equals the scikit-learn point
metric in `metrics.score_outputs` (a test checks this).

The interval is the percentile interval at `level`. The p-value is two-sided: twice the smaller share of
resamples on either side of zero, with the usual +1 correction so it is never exactly 0. An interval at level L
excludes zero exactly when that p-value is below 1 - L (up to the resolution of the resamples).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shared.training.metrics import Outputs

METHOD = "paired-bootstrap-percentile"
_CELLS_PER_CHUNK = 2_000_000  # resamples x rows held in memory at once

WeightedMetric = Callable[[np.ndarray], np.ndarray]


def paired_bootstrap(
    task: str,
    metric: str,
    truth: np.ndarray,
    challenger: Outputs,
    champion: Outputs,
    labels: Sequence[Any],
    *,
    observed: float,
    resamples: int,
    level: float,
    seed: int,
) -> dict[str, Any]:
    """The `comparison` block of `evaluation.json`. `observed` is the point difference of the two scores."""
    new = weighted_metric(task, metric, truth, challenger, labels)
    old = weighted_metric(task, metric, truth, champion, labels)
    differences = _resampled(new, old, len(truth), resamples, seed)
    valid = differences[np.isfinite(differences)]
    result: dict[str, Any] = {
        "metric": metric,
        "method": METHOD,
        "difference": observed,
        "ci_low": None,
        "ci_high": None,
        "level": level,
        "resamples": resamples,
        "valid_resamples": len(valid),
        "p_value": None,
        "seed": seed,
    }
    if len(valid) == 0:
        return result
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(valid, [tail, 1.0 - tail])
    at_or_below = (np.count_nonzero(valid <= 0.0) + 1) / (len(valid) + 1)
    at_or_above = (np.count_nonzero(valid >= 0.0) + 1) / (len(valid) + 1)
    result.update(
        ci_low=float(low), ci_high=float(high), p_value=float(min(1.0, 2.0 * min(at_or_below, at_or_above)))
    )
    return result


def unavailable(metric: str, resamples: int, level: float, seed: int, reason: str) -> dict[str, Any]:
    """A champion exists but the difference cannot be measured (say, it has no probabilities for ROC AUC)."""
    return {
        "metric": metric,
        "method": METHOD,
        "difference": None,
        "ci_low": None,
        "ci_high": None,
        "level": level,
        "resamples": resamples,
        "valid_resamples": 0,
        "p_value": None,
        "seed": seed,
        "reason": reason,
    }


def weighted_metric(
    task: str, metric: str, truth: np.ndarray, outputs: Outputs, labels: Sequence[Any]
) -> WeightedMetric:
    """A function of a (resamples x rows) weight matrix giving the metric per resample (NaN if undefined)."""
    n = len(truth)
    if task == "regression":
        return _regression(metric, np.asarray(truth, dtype=np.float64), outputs.predicted.astype(np.float64))
    if metric == "accuracy":
        correct = _equal(outputs.predicted, truth).astype(np.float64)
        return lambda weights: weights @ correct / n
    if metric == "log_loss":
        if outputs.probabilities is None:
            raise ValueError("log_loss needs class probabilities")
        losses = _row_log_loss(truth, outputs.probabilities, outputs.known)
        return lambda weights: weights @ losses / n
    if metric == "roc_auc":
        if outputs.positive_score is None:
            raise ValueError("roc_auc needs probabilities or a decision function")
        return _roc_auc(_equal(truth, np.full(n, labels[-1], dtype=object)), outputs.positive_score)
    if metric == "f1":
        positive = np.full(n, labels[-1], dtype=object)
        return _binary_f1(_equal(truth, positive), _equal(outputs.predicted, positive))
    if metric == "f1_macro":
        return _macro_f1(truth, outputs.predicted)
    raise ValueError(f"no bootstrap formula for metric {metric!r}")


def _resampled(new: WeightedMetric, old: WeightedMetric, rows: int, resamples: int, seed: int) -> np.ndarray:
    return resampled(lambda weights: new(weights) - old(weights), rows, resamples, seed)


def resampled(metric: WeightedMetric, rows: int, resamples: int, seed: int) -> np.ndarray:
    """`metric` on `resamples` draws of the rows with replacement (NaN where undefined). The live quality check
    bootstraps its metric with this too, so live and holdout intervals are made the same way."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _CELLS_PER_CHUNK // max(rows, 1)))
    parts = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        drawn = rng.integers(0, rows, size=(size, rows))
        flat = (drawn + (np.arange(size) * rows)[:, None]).ravel()
        weights = np.bincount(flat, minlength=size * rows).reshape(size, rows).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            parts.append(metric(weights))
    return np.concatenate(parts)


def _regression(metric: str, truth: np.ndarray, predicted: np.ndarray) -> WeightedMetric:
    n = len(truth)
    error = predicted - truth
    if metric == "rmse":
        squared = error**2
        return lambda weights: np.sqrt(weights @ squared / n)
    if metric == "mae":
        absolute = np.abs(error)
        return lambda weights: weights @ absolute / n
    if metric == "r2":
        squared = error**2
        centred = truth - truth.mean()  # centring first keeps the sums of squares accurate

        def r2(weights: np.ndarray) -> np.ndarray:
            total = weights @ centred**2 - (weights @ centred) ** 2 / n
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(total > 0, 1.0 - (weights @ squared) / total, np.nan)

        return r2
    raise ValueError(f"no bootstrap formula for metric {metric!r}")


def _roc_auc(is_positive: np.ndarray, score: np.ndarray) -> WeightedMetric:
    """Mann-Whitney form: the weighted share of (positive, negative) pairs ranked right, ties counting half."""
    order = np.argsort(score, kind="stable")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    positive = is_positive[order].astype(np.float64)
    negative = 1.0 - positive

    def auc(weights: np.ndarray) -> np.ndarray:
        ordered = weights[:, order]
        pos = np.add.reduceat(ordered * positive, starts, axis=1)
        neg = np.add.reduceat(ordered * negative, starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        right = (pos * (below + 0.5 * neg)).sum(axis=1)
        return np.where(pairs > 0, right / np.where(pairs > 0, pairs, 1.0), np.nan)

    return auc


def _binary_f1(is_positive: np.ndarray, said_positive: np.ndarray) -> WeightedMetric:
    hit = (is_positive & said_positive).astype(np.float64)
    wrong = (is_positive ^ said_positive).astype(np.float64)  # false positives plus false negatives

    def f1(weights: np.ndarray) -> np.ndarray:
        true_positive = weights @ hit
        denominator = 2.0 * true_positive + weights @ wrong
        return np.where(
            denominator > 0, 2.0 * true_positive / np.where(denominator > 0, denominator, 1.0), 0.0
        )

    return f1


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> WeightedMetric:
    """Per class, then the mean over the classes present in the resample's truth or predictions (as sklearn)."""
    codes: dict[Any, int] = {}
    truth_codes = np.array([codes.setdefault(_plain(v), len(codes)) for v in truth])
    predicted_codes = np.array([codes.setdefault(_plain(v), len(codes)) for v in predicted])
    classes = np.arange(len(codes))
    actual = (truth_codes[:, None] == classes).astype(np.float64)
    said = (predicted_codes[:, None] == classes).astype(np.float64)
    hit = actual * said

    def f1_macro(weights: np.ndarray) -> np.ndarray:
        true_positive, support, claimed = weights @ hit, weights @ actual, weights @ said
        denominator = support + claimed
        present = denominator > 0
        per_class = np.where(present, 2.0 * true_positive / np.where(present, denominator, 1.0), 0.0)
        return per_class.sum(axis=1) / present.sum(axis=1)

    return f1_macro


def _row_log_loss(truth: np.ndarray, probabilities: np.ndarray, known: list[Any]) -> np.ndarray:
    """Each row's share of scikit-learn's log loss: -log of the clipped probability of its true class."""
    eps = np.finfo(probabilities.dtype).eps
    index = {label: column for column, label in enumerate(known)}
    columns = np.array([index[_plain(v)] for v in truth])
    chosen = probabilities[np.arange(len(truth)), columns]
    return -np.log(np.clip(chosen, eps, 1.0 - eps))


def _equal(values: np.ndarray, other: np.ndarray) -> np.ndarray:
    return np.fromiter(
        (_plain(a) == _plain(b) for a, b in zip(values, other, strict=True)), dtype=bool, count=len(values)
    )


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value
