"""Evaluation that deserves trust: the paired bootstrap, holdout keys, code version, and the gates end to end
on classification data sets other than diabetes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.config import TASK_DEFAULTS
from shared.domain.decisions.gates import GatePolicy, decide, parse_absolute_gates
from shared.training import comparison, metrics, provenance
from shared.training.errors import TrainingInputError
from shared.training.holdout import holdout_mask, row_keys
from shared.training.run import run_training
from tests.unit.training.test_training import breast_cancer, diabetes, make_config, write_dataset

LOGISTIC = "sklearn.linear_model.LogisticRegression"
GATES = GatePolicy()  # the defaults: significance at 95 %, secondary tolerance 5 %


@pytest.fixture(autouse=True)
def _no_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)


def wine() -> pd.DataFrame:
    """Three classes with string labels: nothing here is diabetes-shaped."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame = data.frame.copy()
    frame["cultivar"] = frame.pop("target").map(dict(enumerate(["barolo", "grignolino", "barbera"])))
    return frame


def binary_config(features: list[str] | None, **overrides: Any) -> dict[str, Any]:
    return make_config(
        "binary",
        "target",
        TASK_DEFAULTS["binary"]["primary_metric"],
        LOGISTIC,
        features=features,
        estimator_params={"max_iter": 2000},
        **overrides,
    )


def gate(evaluation: dict[str, Any], task: str) -> Any:
    return decide(evaluation, parse_absolute_gates(TASK_DEFAULTS[task]["absolute_gates"]), 0.0, policy=GATES)


# --- the bootstrap's formulas ---------------------------------------------------------------------------------


def fitted_outputs(task: str) -> tuple[np.ndarray, metrics.Outputs, list[Any], str]:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if task == "regression":
        frame = diabetes()
        features, truth = frame.drop(columns="target"), frame["target"].to_numpy()
        model, labels = LinearRegression().fit(features, truth), []
    elif task == "binary":
        frame = breast_cancer()
        features, truth = frame[["mean radius", "mean texture"]], frame["target"].to_numpy()
        model, labels = LogisticRegression().fit(features, truth), [0, 1]
    else:
        frame = wine()
        features, truth = frame[["alcohol", "flavanoids"]], frame["cultivar"].to_numpy(dtype=object)
        model = LogisticRegression(max_iter=500).fit(features, truth)
        labels = sorted(set(truth))
    return truth, metrics.outputs(task, model, features, labels), labels, task


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_with_every_row_drawn_once_the_bootstrap_formula_is_the_point_metric(task: str) -> None:
    truth, outputs, labels, _ = fitted_outputs(task)
    points = metrics.score_outputs(task, outputs, truth, labels)

    assert set(points) == set(metrics.TASK_METRICS[task])
    for name, value in points.items():
        once = comparison.weighted_metric(task, name, truth, outputs, labels)(np.ones((1, len(truth))))
        assert once[0] == pytest.approx(value, rel=1e-10, abs=1e-12), name


def test_roc_auc_counts_ties_as_half_like_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    truth = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    score = np.array([0.1, 0.5, 0.5, 0.9, 0.5, 0.2, 0.9, 0.9])
    weights = np.array([[1, 2, 0, 1, 1, 3, 1, 1]], dtype=float)
    outputs = metrics.Outputs(predicted=(score > 0.5).astype(int), positive_score=score, known=[0, 1])

    auc = comparison.weighted_metric("binary", "roc_auc", truth, outputs, [0, 1])(weights)[0]

    assert auc == pytest.approx(roc_auc_score(truth, score, sample_weight=weights[0]))


def test_the_bootstrap_is_seeded_and_the_interval_widens_with_the_level() -> None:
    truth, outputs, labels, task = fitted_outputs("binary")
    noise = np.random.default_rng(0).normal(0, 0.3, len(truth))
    worse = metrics.Outputs(outputs.predicted, None, outputs.positive_score + noise, outputs.known)
    points = [metrics.score_outputs(task, o, truth, labels)["roc_auc"] for o in (outputs, worse)]

    def run(seed: int, level: float) -> dict[str, Any]:
        return comparison.paired_bootstrap(
            task,
            "roc_auc",
            truth,
            outputs,
            worse,
            labels,
            observed=points[0] - points[1],
            resamples=500,
            level=level,
            seed=seed,
        )

    first, again, other = run(1, 0.95), run(1, 0.95), run(2, 0.95)

    assert first == again
    assert (first["ci_low"], first["ci_high"]) != (other["ci_low"], other["ci_high"])
    assert first["valid_resamples"] == 500
    assert first["ci_low"] <= first["difference"] <= first["ci_high"]
    narrow, wide = run(1, 0.8), run(1, 0.99)
    assert wide["ci_low"] <= first["ci_low"] <= narrow["ci_low"]
    assert narrow["ci_high"] <= first["ci_high"] <= wide["ci_high"]


def test_a_model_compared_with_itself_differs_by_exactly_nothing() -> None:
    truth, outputs, labels, task = fitted_outputs("multiclass")

    result = comparison.paired_bootstrap(
        task, "f1_macro", truth, outputs, outputs, labels, observed=0.0, resamples=200, level=0.95, seed=0
    )

    assert (result["ci_low"], result["ci_high"], result["p_value"]) == (0.0, 0.0, 1.0)


def test_the_p_value_agrees_with_the_interval() -> None:
    truth, outputs, labels, task = fitted_outputs("regression")
    noisy = metrics.Outputs(outputs.predicted + np.random.default_rng(0).normal(0, 8, len(truth)))

    result = comparison.paired_bootstrap(
        task, "rmse", truth, outputs, noisy, labels, observed=-1.0, resamples=2000, level=0.95, seed=3
    )

    excludes_zero = result["ci_high"] < 0 or result["ci_low"] > 0
    assert excludes_zero is (result["p_value"] < 0.05)


# --- the run: comparison, holdout keys, code version ----------------------------------------------------------


def test_first_binary_model_on_breast_cancer_passes_the_absolute_gates_only(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "data", [breast_cancer()])

    evaluation = run_training(manifest, tmp_path / "data", binary_config(None), tmp_path / "out")

    assert evaluation["champion"] is None and evaluation["comparison"] is None
    assert evaluation["metric_directions"] == {
        "roc_auc": "maximize",
        "accuracy": "maximize",
        "f1": "maximize",
        "log_loss": "minimize",
    }
    decision = gate(evaluation, "binary")
    assert decision.passed
    assert [v.gate for v in decision.verdicts] == ["roc_auc>=0.6"]


def test_a_significantly_better_challenger_passes_every_gate(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "data", [breast_cancer()])
    run_training(
        manifest, tmp_path / "data", binary_config(["mean radius", "mean texture"]), tmp_path / "champion"
    )

    evaluation = run_training(
        manifest,
        tmp_path / "data",
        binary_config(None),
        tmp_path / "out",
        champion=tmp_path / "champion" / "model",
    )

    paired = evaluation["comparison"]
    assert paired["metric"] == "roc_auc" and paired["level"] == 0.95 and paired["resamples"] == 1000
    assert paired["difference"] == pytest.approx(evaluation["difference"]["roc_auc"])
    assert 0 < paired["ci_low"] <= paired["difference"] <= paired["ci_high"]
    assert paired["p_value"] < 0.05
    on_disk = json.loads((tmp_path / "out" / "evaluation.json").read_text(encoding="utf-8"))
    assert on_disk["comparison"] == paired
    decision = gate(evaluation, "binary")
    assert decision.passed, decision.reasons
    assert [v.gate for v in decision.verdicts] == [
        "roc_auc>=0.6",
        "roc_auc improves on champion by more than 0.00%",
        "roc_auc improvement significant at 95%",
        "accuracy no worse than champion by more than 5.00%",
        "f1 no worse than champion by more than 5.00%",
        "log_loss no worse than champion by more than 5.00%",
    ]


def test_a_better_point_estimate_that_is_not_significant_is_rejected_for_that_reason(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "data", [breast_cancer()])
    base = ["mean radius", "mean texture", "mean smoothness"]
    run_training(manifest, tmp_path / "data", binary_config(base), tmp_path / "champion")

    evaluation = run_training(
        manifest,
        tmp_path / "data",
        binary_config([*base, "texture error"]),
        tmp_path / "out",
        champion=tmp_path / "champion" / "model",
    )

    assert evaluation["challenger"]["roc_auc"] > evaluation["champion"]["roc_auc"]
    paired = evaluation["comparison"]
    assert paired["ci_low"] < 0 < paired["ci_high"] and paired["p_value"] > 0.05
    decision = gate(evaluation, "binary")
    assert not decision.passed
    failed = [v for v in decision.verdicts if not v.passed]
    assert [v.gate for v in failed] == ["roc_auc improvement significant at 95%"]
    assert failed[0].value == paired["ci_low"] and failed[0].threshold == 0.0
    assert "includes 0" in failed[0].reason and "improvement not significant at 95%" in failed[0].reason


def test_multiclass_wine_with_string_labels_is_compared_and_gated(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "data", [wine()])
    primary = TASK_DEFAULTS["multiclass"]["primary_metric"]
    estimator = TASK_DEFAULTS["multiclass"]["estimator"]
    weak = make_config("multiclass", "cultivar", primary, LOGISTIC, features=["ash", "magnesium"])
    run_training(manifest, tmp_path / "data", weak, tmp_path / "champion")
    strong = make_config("multiclass", "cultivar", primary, estimator, estimator_params={"max_iter": 50})

    evaluation = run_training(
        manifest, tmp_path / "data", strong, tmp_path / "out", champion=tmp_path / "champion" / "model"
    )

    assert evaluation["primary_metric"] == "f1_macro"
    assert evaluation["comparison"]["ci_low"] > 0
    decision = gate(evaluation, "multiclass")
    assert decision.passed, decision.reasons


def test_the_comparison_settings_come_from_the_config(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "data", [breast_cancer()])
    run_training(manifest, tmp_path / "data", binary_config(["mean radius"]), tmp_path / "champion")
    config = binary_config(["mean radius", "mean texture"], bootstrap_resamples=300, confidence_level=0.9)

    evaluation = run_training(
        manifest, tmp_path / "data", config, tmp_path / "out", champion=tmp_path / "champion" / "model"
    )
    again = run_training(
        manifest, tmp_path / "data", config, tmp_path / "again", champion=tmp_path / "champion" / "model"
    )

    assert (evaluation["comparison"]["resamples"], evaluation["comparison"]["level"]) == (300, 0.9)
    assert evaluation["comparison"]["seed"] == config["seed"]
    assert again["comparison"] == evaluation["comparison"]  # same manifest, code and seed: same numbers


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bootstrap_resamples": 5}, "bootstrap_resamples must be between"),
        ({"bootstrap_resamples": "lots"}, "not numbers"),
        ({"confidence_level": 1.0}, r"confidence_level must be in \[0.5, 1\)"),
        ({"key_columns": "id"}, "key_columns must be a list"),
    ],
)
def test_bad_evaluation_config_is_refused(tmp_path: Path, overrides: dict, message: str) -> None:
    manifest = write_dataset(tmp_path / "data", [breast_cancer().head(50)])

    with pytest.raises(TrainingInputError, match=message):
        run_training(manifest, tmp_path / "data", binary_config(None, **overrides), tmp_path / "out")


def patients() -> pd.DataFrame:
    """Several visits per patient: a patient's visits must never straddle training and holdout."""
    rng = np.random.default_rng(5)
    rows = 400
    patient = rng.integers(0, 60, rows)
    x = rng.normal(size=rows) + patient / 30
    return pd.DataFrame({"patient": patient, "visit": np.arange(rows), "x": x, "target": (x > 1).astype(int)})


def test_key_columns_keep_every_row_of_a_key_on_one_side() -> None:
    frame = patients()

    held = holdout_mask(row_keys(frame, ["patient"]), 0.25)
    by_row = holdout_mask(row_keys(frame), 0.25)

    sides = pd.Series(held).groupby(frame["patient"]).nunique()
    assert (sides == 1).all()
    assert (pd.Series(by_row).groupby(frame["patient"]).nunique() == 2).any()  # whole-row hashing mixes them
    assert row_keys(frame, ["patient"]) == row_keys(frame.assign(x=0.0), ["patient"])


def test_a_run_with_key_columns_holds_out_whole_keys(tmp_path: Path) -> None:
    frame = patients()
    manifest = write_dataset(tmp_path / "data", [frame])
    config = binary_config(["x"], key_columns=["patient"])

    evaluation = run_training(manifest, tmp_path / "data", config, tmp_path / "out")

    assert evaluation["holdout"] == {"method": "row-hash", "fraction": 0.25, "key_columns": ["patient"]}
    expected = int(holdout_mask(row_keys(frame, ["patient"]), 0.25).sum())
    assert evaluation["rows"]["holdout"] == expected


def test_key_columns_missing_from_the_data_are_refused(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "data", [patients()])

    with pytest.raises(TrainingInputError, match=r"key columns \['patient_id'\] are not in the data"):
        run_training(
            manifest, tmp_path / "data", binary_config(["x"], key_columns=["patient_id"]), tmp_path / "o"
        )


def git_head() -> str | None:
    done = subprocess.run(
        ["git", "-C", str(provenance.PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else None


def test_the_code_version_is_the_git_commit_when_there_is_one() -> None:
    head = git_head()
    if head is None:
        pytest.skip("the project is not a git checkout here")

    recorded = provenance.code_provenance()

    assert recorded["code_version"] == head
    assert recorded["code"]["git_commit"] == head
    assert isinstance(recorded["code"]["git_dirty"], bool)
    assert recorded["code"]["training_sources_sha256"] == provenance.training_sources_sha256()


def test_without_git_the_code_version_is_a_hash_of_the_training_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git to be found

    recorded = provenance.code_provenance(tmp_path)

    assert recorded["code_version"] == f"sha256:{provenance.training_sources_sha256()}"
    assert recorded["code"] == {
        "built_in": True,
        "git_commit": None,
        "git_dirty": None,
        "training_sources_sha256": provenance.training_sources_sha256(),
    }


def test_the_training_code_hash_changes_with_the_code(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text("print(1)\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "run.cpython-311.pyc").write_bytes(b"\0")
    before = provenance.training_sources_sha256(tmp_path)
    (tmp_path / "__pycache__" / "run.cpython-311.pyc").write_bytes(b"\1")
    unchanged = provenance.training_sources_sha256(tmp_path)
    (tmp_path / "run.py").write_text("print(2)\n")

    assert before == unchanged != provenance.training_sources_sha256(tmp_path)


def test_the_evaluation_records_the_code_version(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "data", [breast_cancer()])

    evaluation = run_training(manifest, tmp_path / "data", binary_config(["mean radius"]), tmp_path / "out")

    assert evaluation["code_version"] == provenance.code_provenance()["code_version"]
    assert evaluation["code"]["training_sources_sha256"] == provenance.training_sources_sha256()


def test_a_champion_needing_a_library_this_environment_lacks_fails_the_run_saying_what_to_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.training.evaluate as evaluate_module

    def missing(path: Path):
        raise ModuleNotFoundError("No module named 'lightgbm'")

    monkeypatch.setattr(evaluate_module.model, "load_model", missing)
    with pytest.raises(TrainingInputError, match=r"No module named 'lightgbm'.*MLOPS_TRAINING_ENVIRONMENT"):
        evaluate_module._score_champion(tmp_path, None, None)  # type: ignore[arg-type]
