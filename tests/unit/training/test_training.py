"""The training entry point on small bundled datasets: outputs, holdout, champion, determinism, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.training.errors import TrainingInputError
from shared.training.holdout import holdout_mask, row_keys
from shared.training.run import run_training

REPO = Path(__file__).resolve().parents[3]
EVALUATION_KEYS = {
    "run_id",
    "dataset_version",
    "task",
    "target",
    "features",
    "primary_metric",
    "greater_is_better",
    "slices",
    "fairness",
    "rows",
    "challenger",
    "champion",
    "difference",
    "comparison",
    "metric_directions",
    "holdout",
    "estimator",
    "seed",
    "code_version",
    "code",
    "smoke",
    "model_sha256",
}


@pytest.fixture(autouse=True)
def _no_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)


def write_dataset(root: Path, parts: list[pd.DataFrame], version: str = "v1", suffix: str = "csv") -> dict:
    """Store each part content-addressed under root/files, as the data flow does, and write its manifest."""
    (root / "files").mkdir(parents=True, exist_ok=True)
    files = []
    for index, part in enumerate(parts):
        staging = root / f"staging.{suffix}"
        if suffix == "parquet":
            part.to_parquet(staging, index=False)
        else:
            part.to_csv(staging, index=False)
        sha = hashlib.sha256(staging.read_bytes()).hexdigest()
        staging.replace(root / "files" / f"{sha}.{suffix}")
        files.append(
            {
                "name": f"part{index}.{suffix}",
                "sha256": sha,
                "rows": len(part),
                "path": f"files/{sha}.{suffix}",
            }
        )
    manifest = {"id": version, "files": files}
    (root / f"{version}.json").write_text(json.dumps(manifest), encoding="utf-8")
    return manifest


def make_config(task: str, target: str, primary: str, estimator: str, **overrides: Any) -> dict:
    config = {
        "task": task,
        "target": target,
        "features": None,
        "primary_metric": primary,
        "estimator": estimator,
        "estimator_params": {},
        "holdout_fraction": 0.25,
        "seed": 7,
    }
    config.update(overrides)
    return config


def diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


def iris_with_categories() -> pd.DataFrame:
    """Iris with string labels and a categorical column, exercising one-hot encoding and label handling."""
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.copy()
    frame["species"] = frame.pop("target").map(dict(enumerate(data.target_names)))
    frame["size"] = pd.cut(frame["sepal length (cm)"], 3, labels=["small", "medium", "large"]).astype(str)
    return frame


def assert_outputs(output: Path, evaluation: dict, metrics: set[str]) -> None:
    import mlflow.pyfunc

    on_disk = json.loads((output / "evaluation.json").read_text(encoding="utf-8"))
    assert on_disk == evaluation
    assert set(evaluation) == EVALUATION_KEYS
    assert set(evaluation["challenger"]) == metrics
    assert all(isinstance(value, float) for value in evaluation["challenger"].values())
    assert evaluation["holdout"]["method"] == "row-hash"
    assert evaluation["rows"]["train"] > 0 and evaluation["rows"]["holdout"] > 0
    model = mlflow.pyfunc.load_model(str(output / "model"))
    sample = pd.DataFrame({name: [] for name in evaluation["features"]})
    assert model.metadata.get_input_schema().input_names() == list(sample.columns)
    requirements = (output / "model" / "requirements.txt").read_text(encoding="utf-8")
    assert all(f"{name}==" in requirements for name in ("scikit-learn", "pandas", "numpy", "mlflow"))


def predict_holdout_like(output: Path, frame: pd.DataFrame, features: list[str]) -> Any:
    import mlflow.pyfunc

    rows = frame[features].head(17).astype({c: "float64" for c in features if frame[c].dtype.kind in "iuf"})
    return mlflow.pyfunc.load_model(str(output / "model")).predict(rows)


def test_regression_run_writes_model_and_evaluation(tmp_path: Path) -> None:
    frame = diabetes()
    manifest = write_dataset(tmp_path / "data", [frame.iloc[:200], frame.iloc[200:]])
    config = make_config("regression", "target", "rmse", "sklearn.linear_model.Ridge")

    evaluation = run_training(manifest, tmp_path / "data", config, tmp_path / "out", run_id="run-1")

    assert_outputs(tmp_path / "out", evaluation, {"rmse", "mae", "r2"})
    assert evaluation["run_id"] == "run-1" and evaluation["dataset_version"] == "v1"
    assert evaluation["greater_is_better"] is False
    assert evaluation["features"] == [c for c in frame.columns if c != "target"]
    assert sum(evaluation["rows"].values()) == len(frame)
    assert evaluation["champion"] is None and evaluation["difference"] is None
    assert evaluation["challenger"]["r2"] > 0.3
    assert len(predict_holdout_like(tmp_path / "out", frame, evaluation["features"])) == 17


def test_binary_run_measures_probabilistic_metrics(tmp_path: Path) -> None:
    frame = breast_cancer()
    manifest = write_dataset(tmp_path / "data", [frame])
    config = make_config(
        "binary",
        "target",
        "roc_auc",
        "sklearn.linear_model.LogisticRegression",
        estimator_params={"max_iter": 500},
    )

    evaluation = run_training(manifest, tmp_path / "data", config, tmp_path / "out")

    assert_outputs(tmp_path / "out", evaluation, {"roc_auc", "accuracy", "f1", "log_loss"})
    assert evaluation["greater_is_better"] is True
    assert evaluation["challenger"]["roc_auc"] > 0.95
    predictions = predict_holdout_like(tmp_path / "out", frame, evaluation["features"])
    assert len(predictions) == 17 and set(predictions) <= {0, 1}


def test_multiclass_run_with_string_labels_and_categorical_column(tmp_path: Path) -> None:
    frame = iris_with_categories()
    manifest = write_dataset(tmp_path / "data", [frame])
    config = make_config(
        "multiclass", "species", "f1_macro", "sklearn.ensemble.HistGradientBoostingClassifier"
    )

    evaluation = run_training(manifest, tmp_path / "data", config, tmp_path / "out")

    assert_outputs(tmp_path / "out", evaluation, {"f1_macro", "accuracy", "log_loss"})
    assert "size" in evaluation["features"]
    assert evaluation["challenger"]["f1_macro"] > 0.8
    predictions = predict_holdout_like(tmp_path / "out", frame, evaluation["features"])
    assert len(predictions) == 17 and set(predictions) <= {"setosa", "versicolor", "virginica"}


def test_parquet_files_are_read(tmp_path: Path) -> None:
    frame = diabetes()
    manifest = write_dataset(tmp_path / "data", [frame], suffix="parquet")
    config = make_config("regression", "target", "rmse", "sklearn.linear_model.Ridge")

    evaluation = run_training(manifest, tmp_path / "data", config, tmp_path / "out")

    assert sum(evaluation["rows"].values()) == len(frame)


def test_champion_is_scored_on_the_same_holdout_via_cli(tmp_path: Path) -> None:
    """The champion uses only the columns of its signature; on the same data it scores what it scored as a
    challenger, which can only happen if both runs hold out exactly the same rows."""
    frame = diabetes()
    manifest = write_dataset(tmp_path / "data", [frame])
    narrow = make_config(
        "regression", "target", "rmse", "sklearn.linear_model.Ridge", features=["bmi", "bp", "s5"]
    )
    first = run_training(manifest, tmp_path / "data", narrow, tmp_path / "first")
    wide = make_config("regression", "target", "rmse", "sklearn.ensemble.RandomForestRegressor")
    wide["estimator_params"] = {"n_estimators": 20}
    (tmp_path / "config.json").write_text(json.dumps(wide), encoding="utf-8")

    result = run_cli(
        tmp_path,
        "--manifest",
        tmp_path / "data" / "v1.json",
        "--config",
        tmp_path / "config.json",
        "--champion",
        tmp_path / "first" / "model",
        "--run-id",
        "second",
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    second = json.loads((tmp_path / "out" / "evaluation.json").read_text(encoding="utf-8"))
    assert summary["run_id"] == "second" and summary["champion"] == second["champion"]["rmse"]
    assert second["rows"] == first["rows"]
    assert second["champion"] == pytest.approx(first["challenger"], rel=1e-12)
    for name, value in second["difference"].items():
        assert value == pytest.approx(second["challenger"][name] - first["challenger"][name])
    assert second["comparison"]["difference"] == second["difference"]["rmse"]
    assert summary["ci"] == {k: second["comparison"][k] for k in ("ci_low", "ci_high", "level", "p_value")}
    assert summary["code_version"] == second["code_version"]


def test_a_holdout_row_stays_in_the_holdout_as_the_dataset_grows() -> None:
    frame = diabetes()
    before = frame.iloc[:150].assign(visit=np.arange(150))
    # The same rows re-read with their integers as floats, then later files with a column the early ones lack.
    grown = pd.concat(
        [before.astype({"visit": "float64"}), frame.iloc[150:].assign(extra="x")],
        ignore_index=True,
    )
    assert grown["extra"].isna().sum() == len(before) and grown["visit"].isna().sum() == len(frame) - 150

    held_before = holdout_mask(row_keys(before), 0.3)
    held_after = holdout_mask(row_keys(grown), 0.3)

    assert 0 < held_before.sum() < len(before)
    assert list(held_after[: len(before)]) == list(held_before)
    assert 0.2 < held_after.mean() < 0.4


def test_row_keys_normalise_numbers_and_ignore_column_order() -> None:
    a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    b = pd.DataFrame({"y": ["a", "b"], "x": [1.0, 2.0]})
    c = pd.DataFrame({"y": ["a", "b"], "x": ["1", "2.0"]})
    d = pd.DataFrame({"x": [1, 3], "y": ["a", "b"]})

    assert row_keys(a) == row_keys(b) == row_keys(c)
    assert row_keys(pd.DataFrame({"x": [0.1 + 0.2, -0.0]})) == row_keys(pd.DataFrame({"x": ["0.3", "0"]}))
    assert row_keys(a)[0] == row_keys(d)[0] and row_keys(a)[1] != row_keys(d)[1]


def test_same_inputs_give_identical_metrics_whatever_the_file_order(tmp_path: Path) -> None:
    frame = diabetes()
    parts = [frame.iloc[:100], frame.iloc[100:300], frame.iloc[300:]]
    manifest = write_dataset(tmp_path / "data", parts)
    reordered = {**manifest, "files": list(reversed(manifest["files"]))}
    config = make_config(
        "regression",
        "target",
        "rmse",
        "sklearn.ensemble.RandomForestRegressor",
        estimator_params={"n_estimators": 15},
    )

    runs = [
        run_training(manifest, tmp_path / "data", config, tmp_path / "a"),
        run_training(manifest, tmp_path / "data", config, tmp_path / "b"),
        run_training(reordered, tmp_path / "data", config, tmp_path / "c"),
    ]
    other_seed = run_training(manifest, tmp_path / "data", {**config, "seed": 8}, tmp_path / "d")

    assert runs[0]["challenger"] == runs[1]["challenger"] == runs[2]["challenger"]
    assert other_seed["challenger"] != runs[0]["challenger"]


def test_empty_holdout_is_refused(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "data", [diabetes().iloc[:3]])
    config = make_config("regression", "target", "rmse", "sklearn.linear_model.Ridge", holdout_fraction=0.01)

    with pytest.raises(TrainingInputError, match="holdout is empty"):
        run_training(manifest, tmp_path / "data", config, tmp_path / "out")


def test_mlflow_tracking_logs_the_run_once_per_run_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLOPS_EXPERIMENT", "training-test")
    manifest = write_dataset(tmp_path / "data", [diabetes()])
    config = make_config("regression", "target", "rmse", "sklearn.linear_model.Ridge")

    first = run_training(manifest, tmp_path / "data", config, tmp_path / "out", run_id="tracked")
    recorded = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    run_training(manifest, tmp_path / "data", config, tmp_path / "out", run_id="tracked")
    again = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))

    assert set(recorded) == {"mlflow_run_id", "artifact_uri"} and again == recorded
    run = mlflow.MlflowClient().get_run(recorded["mlflow_run_id"])
    assert run.data.tags["mlops.run_id"] == "tracked"
    assert run.data.metrics["rmse"] == pytest.approx(first["challenger"]["rmse"])
    assert run.data.params["estimator"] == "sklearn.linear_model.Ridge"
    assert mlflow.pyfunc.load_model(f"runs:/{recorded['mlflow_run_id']}/model") is not None


def test_a_tracking_server_that_refuses_costs_a_warning_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    # a server that answers nothing: what an identity without the workspace's role meets, as far as the run sees
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    manifest = write_dataset(tmp_path / "data", [diabetes()])
    config = make_config("regression", "target", "rmse", "sklearn.linear_model.Ridge")

    evaluation = run_training(manifest, tmp_path / "data", config, tmp_path / "out", run_id="untracked")

    assert evaluation["challenger"]["rmse"] > 0
    stored = json.loads((tmp_path / "out" / "evaluation.json").read_text(encoding="utf-8"))
    assert stored["run_id"] == "untracked"
    recorded = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert recorded["tracking"] == "failed" and recorded["reason"]
    assert "MLflow tracking failed" in caplog.text


def run_cli(tmp_path: Path, *args: Any) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "shared.training",
        "--data-dir",
        tmp_path / "data",
        "--output",
        tmp_path / "out",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    return subprocess.run(
        [str(a) for a in (*command, *args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_exits_2_on_sha256_mismatch(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "data", [diabetes()])
    stored = tmp_path / "data" / manifest["files"][0]["path"]
    stored.write_text(stored.read_text(encoding="utf-8") + "1,1,1,1,1,1,1,1,1,1,1\n", encoding="utf-8")
    config = make_config("regression", "target", "rmse", "sklearn.linear_model.Ridge")
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")

    result = run_cli(
        tmp_path, "--manifest", tmp_path / "data" / "v1.json", "--config", tmp_path / "config.json"
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert "sha256 mismatch" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_cli_exits_2_when_the_target_column_is_missing(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", [diabetes()])
    config = make_config("regression", "progression", "rmse", "sklearn.linear_model.Ridge")
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")

    result = run_cli(
        tmp_path, "--manifest", tmp_path / "data" / "v1.json", "--config", tmp_path / "config.json"
    )

    assert result.returncode == 2
    assert "target column 'progression' is not in the data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = (
        "import sys, shared.training, shared.training.__main__; "
        "print([m for m in ('sklearn', 'pandas', 'mlflow', 'numpy') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_smoke_sample_holds_holdout_rows_and_the_models_own_predictions(tmp_path: Path) -> None:
    import mlflow.pyfunc

    manifest = write_dataset(tmp_path, [diabetes()])
    config = make_config("regression", "target", "rmse", "sklearn.linear_model.Ridge")
    evaluation = run_training(manifest, tmp_path, config, tmp_path / "out")

    smoke = evaluation["smoke"]
    assert len(smoke["data"]) == len(smoke["predictions"]) == 20
    served = mlflow.pyfunc.load_model(str(tmp_path / "out" / "model"))
    again = served.predict(pd.DataFrame(smoke["data"], columns=smoke["columns"]))
    assert list(again) == pytest.approx(smoke["predictions"])
