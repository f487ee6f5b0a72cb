"""Our evaluation per segment of the holdout: declared slices, and fairness across a sensitive column.

Slices: for each value of a declared column (a numeric column with more than MAX_VALUES values is cut into
quartiles), challenger and champion are scored on the very same holdout rows and the difference of the primary
metric gets the same paired bootstrap as the whole holdout. A slice with fewer than `slice_min_rows` rows, or on
which the metric cannot be measured, is reported as such with its row count: the gate (in the app) can say what
it could not judge.

Fairness (binary tasks), computed directly from each model's predicted labels per group of the sensitive
column, with Fairlearn's definitions: the demographic parity difference is the largest gap in selection rate
P(ŷ = positive) between groups; the equalized odds difference is the larger of the largest gaps in true
positive rate and in false positive rate. Two rates per group do not justify a dependency in every training
environment; the tests check the formulas on worked examples. Groups too small to judge are listed and left
out of the differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import shared.training.comparison as comparison
import shared.training.metrics as metrics
from shared.training.metrics import Outputs
from shared.training.split import Split

MAX_VALUES = 20  # distinct values of a numeric column before it is cut into quartiles
TOO_SMALL = "too small"
NOT_MEASURABLE = "not measurable"


def slice_comparison(
    split: Split, truth: np.ndarray, challenger: Outputs, champion: Outputs | None
) -> list[dict[str, Any]] | None:
    """One entry per slice of each declared column, largest first; None when no slice column is declared."""
    settings = split.settings
    if not settings.slice_columns:
        return None
    holdout = split.holdout_columns
    found: list[dict[str, Any]] = []
    for column in settings.slice_columns:
        if column not in holdout.columns:
            found.append({"column": column, "value": None, "rows": 0, "verdict": "no such column"})
            continue
        for value, mask in _groups(holdout[column]):
            found.append(_one(split, column, value, mask, truth, challenger, champion))
    return found


def fairness(split: Split, truth: np.ndarray, challenger: Outputs, champion: Outputs | None) -> dict | None:
    """Selection, true and false positive rates per group, and the two differences, for each model."""
    settings = split.settings
    column = settings.sensitive_column
    if not column or settings.task != "binary":
        return None
    holdout = split.holdout_columns
    if column not in holdout.columns:
        return {
            "column": column,
            "reason": "no such column",
            "groups": {},
            "challenger": None,
            "champion": None,
        }
    positive = split.labels[-1]
    # a numeric column with many values is cut into quartiles, as for slices: one group per age is no group
    groups = {str(value): mask for value, mask in _groups(holdout[column])}
    judged = {name: mask for name, mask in groups.items() if int(mask.sum()) >= settings.slice_min_rows}
    return {
        "column": column,
        "positive": metrics_plain(positive),
        "min_rows": settings.slice_min_rows,
        "groups": {name: int(mask.sum()) for name, mask in groups.items()},
        "too_small": sorted(set(groups) - set(judged)),
        "challenger": _fairness(truth, challenger.predicted, positive, judged),
        "champion": _fairness(truth, champion.predicted, positive, judged) if champion is not None else None,
    }


def _one(
    split: Split,
    column: str,
    value: Any,
    mask: np.ndarray,
    truth: np.ndarray,
    challenger: Outputs,
    champion: Outputs | None,
) -> dict[str, Any]:
    settings = split.settings
    metric = settings.primary_metric
    rows = int(mask.sum())
    entry: dict[str, Any] = {"column": column, "value": value, "rows": rows, "metric": metric}
    if rows < settings.slice_min_rows:
        return {**entry, "verdict": TOO_SMALL}
    part = truth[mask]
    new = metrics.score_outputs(settings.task, _subset(challenger, mask), part, split.labels).get(metric)
    entry["challenger"] = new
    if champion is None:
        return {**entry, "verdict": "no champion" if new is not None else NOT_MEASURABLE}
    old = metrics.score_outputs(settings.task, _subset(champion, mask), part, split.labels).get(metric)
    entry["champion"] = old
    if new is None or old is None:
        return {**entry, "verdict": NOT_MEASURABLE}
    try:
        paired = comparison.paired_bootstrap(
            settings.task,
            metric,
            part,
            _subset(challenger, mask),
            _subset(champion, mask),
            split.labels,
            observed=new - old,
            resamples=settings.bootstrap_resamples,
            level=settings.confidence_level,
            seed=settings.seed,
        )
    except ValueError as error:  # the metric has no bootstrap formula for these outputs
        return {**entry, "verdict": NOT_MEASURABLE, "reason": str(error)}
    return {
        **entry,
        "difference": new - old,
        "low": paired["ci_low"],
        "high": paired["ci_high"],
        "level": paired["level"],
        "p_value": paired["p_value"],
        "verdict": "measured",
    }


def _groups(values: pd.Series) -> list[tuple[Any, np.ndarray]]:
    """(value or "[low, high]" bin, row mask) for each group, largest first; missing values are a group."""
    series = values.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(series) and series.nunique(dropna=True) > MAX_VALUES:
        bins = pd.qcut(series, 4, duplicates="drop")
        labels = bins.astype(object).map(lambda b: f"[{b.left:.4g}, {b.right:.4g}]" if pd.notna(b) else None)
        series = labels
    keys = series.astype(object).where(series.notna(), None)
    found = []
    for value in pd.unique(keys):
        mask = (keys == value).to_numpy() if value is not None else keys.isna().to_numpy()
        found.append((metrics_plain(value), mask.astype(bool)))
    return sorted(found, key=lambda item: -int(item[1].sum()))


def _subset(outputs: Outputs, mask: np.ndarray) -> Outputs:
    return Outputs(
        predicted=outputs.predicted[mask],
        probabilities=outputs.probabilities[mask] if outputs.probabilities is not None else None,
        positive_score=outputs.positive_score[mask] if outputs.positive_score is not None else None,
        known=outputs.known,
    )


def _fairness(
    truth: np.ndarray, predicted: np.ndarray, positive: Any, groups: dict[str, np.ndarray]
) -> dict[str, Any]:
    actual = _is(truth, positive)
    chosen = _is(predicted, positive)
    rates: dict[str, dict[str, float | None]] = {}
    for name, mask in groups.items():
        positives, negatives = mask & actual, mask & ~actual
        rates[name] = {
            "selection_rate": float(chosen[mask].mean()),
            "true_positive_rate": float(chosen[positives].mean()) if positives.any() else None,
            "false_positive_rate": float(chosen[negatives].mean()) if negatives.any() else None,
        }
    selection = _gap(rates, "selection_rate")
    tpr, fpr = _gap(rates, "true_positive_rate"), _gap(rates, "false_positive_rate")
    odds = max((g for g in (tpr, fpr) if g is not None), default=None)
    return {
        "rates": rates,
        "demographic_parity_difference": selection,
        "equalized_odds_difference": odds,
    }


def _gap(rates: dict[str, dict[str, float | None]], key: str) -> float | None:
    values = [r[key] for r in rates.values() if r[key] is not None]
    return float(max(values) - min(values)) if len(values) >= 2 else None


def _is(values: np.ndarray, positive: Any) -> np.ndarray:
    return np.asarray([v == positive for v in values], dtype=bool)


def metrics_plain(value: Any) -> Any:
    """A JSON value for a group's name (numpy scalars to Python ones)."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, str | int | float | bool) else str(value)
