"""Evaluation per segment: slices compared with the paired bootstrap on the same rows, fairness by Fairlearn's
definitions on worked examples, and the gates over both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.domain.decisions.gates import GatePolicy, decide
from shared.training.config import TrainingConfig
from shared.training.metrics import Outputs
from shared.training.run import run_training
from shared.training.slices import fairness, slice_comparison
from shared.training.split import Split


def _split(frame: pd.DataFrame, target: np.ndarray, task: str, **config: Any) -> Split:
    settings = TrainingConfig(
        task=task,
        target="y",
        features=None,
        primary_metric={"regression": "rmse", "binary": "accuracy"}[task],
        estimator="x",
        bootstrap_resamples=500,
        **config,
    )
    labels = sorted(set(target.tolist())) if task != "regression" else []
    return Split(settings, "ds-1", [], frame, pd.Series(target), np.ones(len(frame), dtype=bool), labels)


def _regional() -> tuple[Split, np.ndarray, Outputs, Outputs]:
    """North: the challenger errs by 5, the champion by 1; south: the reverse; east: ten rows only."""
    rng = np.random.default_rng(0)
    region = ["north"] * 200 + ["south"] * 200 + ["east"] * 10
    truth = rng.normal(50, 10, len(region))
    noise = rng.normal(0, 1, len(region))
    big = np.array([5.0 if r == "north" else 1.0 for r in region])
    small = np.array([1.0 if r == "north" else 5.0 for r in region])
    frame = pd.DataFrame(
        {"region": region, "x": rng.normal(size=len(region))}, index=np.arange(7, 7 + len(region))
    )
    split = _split(frame, truth, "regression", slice_columns=("region",), slice_min_rows=30)
    return split, truth, Outputs(truth + big * noise), Outputs(truth + small * noise)


def test_each_slice_compares_both_models_on_its_own_rows() -> None:
    split, truth, challenger, champion = _regional()
    found = {entry["value"]: entry for entry in slice_comparison(split, truth, challenger, champion)}

    north, south, east = found["north"], found["south"], found["east"]
    assert north["rows"] == 200 and north["verdict"] == "measured"
    assert north["challenger"] > 4 * north["champion"]  # rmse: about 5 against 1
    assert north["low"] > 0  # significantly worse, on the very rows where it is
    assert south["high"] < 0  # significantly better there
    assert east == {"column": "region", "value": "east", "rows": 10, "metric": "rmse", "verdict": "too small"}


def test_a_slice_significantly_worse_rejects_the_challenger_and_small_ones_are_named() -> None:
    split, truth, challenger, champion = _regional()
    evaluation = {
        "primary_metric": "rmse",
        "greater_is_better": False,
        "challenger": {"rmse": 3.6},
        "champion": {"rmse": 3.6},
        "slices": slice_comparison(split, truth, challenger, champion),
    }

    decision = decide(
        evaluation, (), 0.0, policy=GatePolicy(require_significance=False, slice_tolerance=0.05)
    )

    [verdict] = [v for v in decision.verdicts if v.gate.startswith("no slice")]
    assert not verdict.passed and not decision.passed
    assert "significantly worse on 1 slice(s): region=north (rmse" in verdict.reason
    assert "not judged: region=east (too small, 10 rows)" in verdict.reason

    recorded = decide(
        evaluation, (), 0.0, policy=GatePolicy(require_significance=False, slice_tolerance=None)
    )
    [verdict] = [v for v in recorded.verdicts if v.gate.startswith("no slice")]
    assert verdict.passed and "not gated" in verdict.reason


def test_a_numeric_slice_column_with_many_values_is_cut_into_quartiles() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 400)})
    truth = rng.normal(size=400)
    split = _split(frame, truth, "regression", slice_columns=("age", "missing"), slice_min_rows=30)

    found = slice_comparison(split, truth, Outputs(truth + 0.1), None)

    bins = [e for e in found if e["column"] == "age"]
    assert len(bins) == 4 and sum(e["rows"] for e in bins) == 400
    assert all(e["value"].startswith("[") and e["verdict"] == "no champion" for e in bins)
    assert {"column": "missing", "value": None, "rows": 0, "verdict": "no such column"} in found


def test_fairness_differences_follow_fairlearns_definitions() -> None:
    """Group a: 4 positives (3 chosen), 4 negatives (1 chosen); group b: 4 positives (1 chosen), 4 negatives
    (1 chosen). Selection rates 4/8 and 2/8; TPR 3/4 and 1/4; FPR 1/4 and 1/4."""
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 2)
    predicted = np.array([1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
    frame = pd.DataFrame({"group": ["a"] * 8 + ["b"] * 8 + []})
    split = _split(frame, truth, "binary", sensitive_column="group", slice_min_rows=2)

    found = fairness(split, truth, Outputs(predicted), Outputs(truth))

    challenger = found["challenger"]
    assert challenger["demographic_parity_difference"] == pytest.approx(0.25)
    assert challenger["equalized_odds_difference"] == pytest.approx(0.5)  # max(TPR gap 0.5, FPR gap 0)
    assert challenger["rates"]["a"]["true_positive_rate"] == pytest.approx(0.75)
    assert found["champion"]["equalized_odds_difference"] == pytest.approx(0.0)
    assert found["groups"] == {"a": 8, "b": 8} and found["too_small"] == []

    evaluation = {"primary_metric": "accuracy", "challenger": {"accuracy": 0.6}, "fairness": found}
    gated = decide(evaluation, (), 0.0, policy=GatePolicy(fairness_limit=0.3))
    assert [v.passed for v in gated.verdicts] == [True, False]
    assert "equalized_odds_difference across group 0.500 exceeds 0.3" in gated.reasons[0]
    recorded = decide(evaluation, (), 0.0, policy=GatePolicy())
    assert recorded.passed and all("not gated" in v.reason for v in recorded.verdicts)


def test_groups_too_small_are_listed_and_left_out_of_the_differences() -> None:
    truth = np.array([1, 0] * 20 + [1, 0])
    frame = pd.DataFrame({"group": ["a"] * 40 + ["tiny"] * 2})
    split = _split(frame, truth, "binary", sensitive_column="group", slice_min_rows=10)

    found = fairness(split, truth, Outputs(truth), None)

    assert found["too_small"] == ["tiny"]
    assert found["challenger"]["demographic_parity_difference"] is None  # one group left: no gap to measure
    verdicts = decide({"challenger": {}, "fairness": found}, (), 0.0, policy=GatePolicy(fairness_limit=0.1))
    assert not verdicts.passed and "could not be measured" in verdicts.reasons[0]


@pytest.mark.parametrize("value", [None, "x", [], {}, 1.5, True, {"verdict": "measured", "low": "a"}])
def test_hostile_slice_and_fairness_blocks_never_crash_the_gates(value: Any) -> None:
    evaluation = {"challenger": {}, "slices": [value], "fairness": value}
    decision = decide(evaluation, (), 0.0, policy=GatePolicy(slice_tolerance=0.05, fairness_limit=0.1))
    assert isinstance(decision.passed, bool)


def test_the_training_run_records_slices_and_fairness_in_its_evaluation(tmp_path: Path) -> None:
    """Through the real job: a breast-cancer challenger against a weaker champion, sliced by a site column."""
    from tests.unit.training.test_evaluation import binary_config
    from tests.unit.training.test_training import breast_cancer, write_dataset

    frame = breast_cancer()
    frame["site"] = np.where(np.arange(len(frame)) % 3 == 0, "clinic-a", "clinic-b")
    manifest = write_dataset(tmp_path / "data", [frame])
    segments = {"slice_columns": ["site"], "slice_min_rows": 20, "sensitive_column": "site"}
    champion = ["mean radius", "mean texture"]
    run_training(manifest, tmp_path / "data", binary_config(champion, **segments), tmp_path / "champion")

    evaluation = run_training(
        manifest,
        tmp_path / "data",
        binary_config(None, **segments),
        tmp_path / "out",
        champion=tmp_path / "champion" / "model",
    )

    found = {entry["value"]: entry for entry in evaluation["slices"]}
    assert set(found) == {"clinic-a", "clinic-b"}
    assert sum(e["rows"] for e in found.values()) == evaluation["rows"]["holdout"]
    assert all(
        e["verdict"] == "measured" and e["low"] <= e["difference"] <= e["high"] for e in found.values()
    )
    assert evaluation["fairness"]["column"] == "site"
    assert set(evaluation["fairness"]["challenger"]["rates"]) == {"clinic-a", "clinic-b"}
    written = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert written["slices"] == evaluation["slices"]


def test_a_slice_whose_interval_is_undefined_is_not_measurable_not_ok() -> None:
    entry = {
        "column": "site",
        "value": "a",
        "rows": 40,
        "metric": "roc_auc",
        "verdict": "measured",
        "challenger": 0.7,
        "champion": 0.8,
        "difference": -0.1,
        "low": None,
        "high": None,
    }
    evaluation = {"primary_metric": "roc_auc", "challenger": {}, "slices": [entry]}
    [verdict] = decide(evaluation, (), 0.0, policy=GatePolicy(slice_tolerance=0.05)).verdicts
    assert "0 slice(s) judged" in verdict.reason and "site=a (not measurable, 40 rows)" in verdict.reason
