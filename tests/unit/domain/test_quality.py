"""The live metric (shared.domain.quality) and the verdict on it (shared.domain.decisions.quality)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error

from shared.domain import quality
from shared.domain.decisions.gates import parse_absolute_gates
from shared.domain.decisions.quality import (
    DEGRADED,
    HEALTHY,
    NOT_MEASURED,
    TOO_FEW_ROWS,
    LiveMetric,
    choose_metric,
    judge,
)

OPTIONS = {"level": 0.95, "resamples": 500, "seed": 7}


def regression(rows: int, noise: float, seed: int = 0) -> quality.Sample:
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1, rows)
    return quality.sample("regression", list(truth), list(truth + rng.normal(0, noise, rows)))


# --- the live metric ----------------------------------------------------------------------------------------------


def test_point_metrics_are_scikit_learns() -> None:
    data = regression(300, 0.5)
    points = quality.points(data)
    assert set(points) == {"rmse", "mae", "r2"}
    assert points["rmse"] == pytest.approx(math.sqrt(mean_squared_error(data.truth, data.predicted)))


def test_classification_is_scored_on_canonical_classes_without_scores() -> None:
    truth = ["1", "0", "1", "1", "0", "0"] * 20
    predicted = ["1", "0", "0", "1", "0", "1"] * 20
    data = quality.sample("binary", truth, predicted)
    points = quality.points(data)
    # ROC AUC and log loss need scores the endpoint does not log: they are not measured
    assert set(points) == {"accuracy", "f1"}
    assert points["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert points["f1"] == pytest.approx(f1_score(truth, predicted, pos_label="1"))
    assert data.classes == ["0", "1"]


def test_the_positive_class_is_the_last_in_the_training_jobs_order() -> None:
    data = quality.sample("binary", ["2", "10", "10"], ["10", "10", "2"])
    assert data.classes == ["2", "10"]  # numerically: 10 is the positive class, as the job would have it
    assert quality.points(data)["f1"] == pytest.approx(
        f1_score(["2", "10", "10"], ["10", "10", "2"], pos_label="10")
    )


def test_the_interval_holds_the_point_is_seeded_and_narrows_with_more_rows() -> None:
    small, large = regression(100, 0.5), regression(5000, 0.5)
    first = quality.interval(small, "rmse", quality.points(small)["rmse"], **OPTIONS)
    again = quality.interval(small, "rmse", quality.points(small)["rmse"], **OPTIONS)
    wide = first.high - first.low
    assert first == again
    assert first.low < first.value < first.high and first.rows == 100 and first.level == 0.95
    narrow = quality.interval(large, "rmse", quality.points(large)["rmse"], **OPTIONS)
    assert narrow.high - narrow.low < wide / 4


def test_the_interval_is_the_bootstrap_percentile_interval() -> None:
    """Recomputed by hand: resample rows with the same generator the training job's bootstrap uses."""
    data = quality.sample("binary", ["1", "0"] * 30, ["1", "1"] * 30)
    measured = quality.interval(data, "accuracy", 0.5, **OPTIONS)
    rng = np.random.default_rng(OPTIONS["seed"])
    correct = (data.truth == data.predicted).astype(float)
    draws = rng.integers(0, 60, size=(OPTIONS["resamples"], 60))
    accuracies = correct[draws].mean(axis=1)
    assert measured.low == pytest.approx(np.quantile(accuracies, 0.025))
    assert measured.high == pytest.approx(np.quantile(accuracies, 0.975))


def test_a_metric_no_resample_can_measure_has_no_interval() -> None:
    data = quality.sample("regression", [1.0], [2.0])  # r2 of one row is undefined in every resample
    measured = quality.interval(data, "r2", 0.0, **OPTIONS)
    assert (measured.low, measured.high) == (None, None)


def test_the_prediction_of_a_served_row_is_its_prediction_column_or_its_only_column() -> None:
    assert quality.prediction("regression", {"prediction": 2}) == 2.0
    assert quality.prediction("binary", {"score": 1.0}) == "1"
    assert quality.prediction("binary", {"a": 1, "b": 0}) is None
    assert quality.prediction("regression", {"prediction": "high"}) is None


def test_no_rows_measure_nothing() -> None:
    assert quality.points(quality.sample("regression", [], [])) == {}


# --- the verdict --------------------------------------------------------------------------------------------------


def live(value: float, low: float, high: float, metric: str = "rmse", rows: int = 500) -> LiveMetric:
    return LiveMetric(metric, value, low, high, 0.95, rows)


def verdict(metric: LiveMetric | None, offline: float | None = 1.0, greater: bool = False, **options):
    settings = {"rows": 500, "margin": 0.1, "min_rows": 100, **options}
    return judge(metric, greater_is_better=greater, offline=offline, **settings)


def test_a_significant_shortfall_beyond_the_margin_is_degraded() -> None:
    result = verdict(live(1.5, 1.3, 1.7))  # rmse: lower is better; the line is 1.0 + 10 %
    assert result.status == DEGRADED and result.degraded and result.threshold == pytest.approx(1.1)
    assert result.reasons == (
        "live rmse=1.5, 95% CI 1.3 to 1.7, n=500 is significantly above the offline rmse=1 by more than 10% "
        "(line 1.1)",
    )
    higher = verdict(live(0.6, 0.55, 0.65, "r2"), offline=0.8, greater=True)
    assert higher.degraded and "significantly below the offline r2=0.8" in higher.reasons[0]


def test_a_shortfall_within_the_margin_or_not_significant_is_healthy() -> None:
    within = verdict(live(1.08, 1.05, 1.09))  # worse than offline, but inside the margin
    assert within.status == HEALTHY
    assert within.reasons == (
        "live rmse=1.08, 95% CI 1.05 to 1.09, n=500 vs offline 1: no significant shortfall, no floor failed",
    )
    noisy = verdict(live(1.3, 1.05, 1.6))  # the point is past the line, the interval is not wholly
    assert noisy.status == HEALTHY


def test_the_line_moves_with_the_margin_and_the_direction() -> None:
    assert verdict(live(1.5, 1.3, 1.7), margin=0.5).status == HEALTHY  # the line is 1.5 now
    assert verdict(live(0.7, 0.6, 0.8, "r2"), offline=1.0, greater=True, margin=0.1).degraded
    assert not verdict(live(0.7, 0.6, 0.95, "r2"), offline=1.0, greater=True, margin=0.1).degraded


def test_a_floor_failed_by_the_whole_interval_is_degraded_even_without_an_offline_value() -> None:
    floors = parse_absolute_gates("r2>=0.5,rmse<=2")
    r2 = live(0.3, 0.2, 0.4, "r2")
    result = verdict(live(1.0, 0.9, 1.1), offline=None, floors=floors, measured={"r2": r2})
    assert result.degraded and result.threshold is None
    assert result.reasons == (
        "live r2=0.3, 95% CI 0.2 to 0.4, n=500 fails the floor r2>=0.5 with its whole interval",
    )
    straddling = verdict(live(1.0, 0.9, 1.1), floors=floors, measured={"r2": live(0.45, 0.3, 0.6, "r2")})
    assert straddling.status == HEALTHY
    ceiling = verdict(live(2.5, 2.1, 2.9), offline=3.0, floors=floors, measured={"rmse": live(2.5, 2.1, 2.9)})
    assert ceiling.degraded and "fails the floor rmse<=2" in ceiling.reasons[0]


def test_too_few_rows_are_said_so_and_never_judged() -> None:
    result = verdict(live(9.0, 8.0, 10.0), rows=99)
    assert result.status == TOO_FEW_ROWS and not result.degraded
    assert result.reasons == ("99 joined rows, fewer than the 100 needed to judge",)


def test_no_comparable_metric_is_not_measured() -> None:
    assert verdict(None).status == NOT_MEASURED


def test_the_primary_metric_is_used_when_it_can_be_measured_live() -> None:
    assert choose_metric("rmse", ["rmse", "mae"], {"rmse": 1.0}, ["rmse", "mae"]) == ("rmse", "")
    metric, note = choose_metric(
        "roc_auc", ["accuracy", "f1"], {"roc_auc": 0.9, "f1": 0.7}, ["accuracy", "f1"]
    )
    assert metric == "f1"  # accuracy was not measured offline
    assert note == "roc_auc cannot be measured on the logged predictions; compared on f1"
    assert choose_metric("roc_auc", ["accuracy"], {"roc_auc": 0.9}, ["accuracy"])[0] is None


def test_verdicts_are_plain_json() -> None:
    assert verdict(live(1.5, 1.3, 1.7)).as_dict()["verdict"] == "degraded"
    assert live(1.0, 0.5, 1.5).as_dict() == {
        "metric": "rmse",
        "value": 1.0,
        "low": 0.5,
        "high": 1.5,
        "level": 0.95,
        "rows": 500,
    }


def test_intervals_drawn_together_equal_intervals_drawn_alone() -> None:
    data = regression(200, 0.5)
    points = quality.points(data)
    together = quality.intervals(data, {"rmse": points["rmse"], "r2": points["r2"]}, **OPTIONS)
    assert together == {
        name: quality.interval(data, name, points[name], **OPTIONS) for name in ("rmse", "r2")
    }
