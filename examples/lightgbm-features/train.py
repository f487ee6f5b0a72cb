"""Train LightGBM on the project's own features and save an MLflow model, as the platform's contract runs it:

    python train.py --train {train} --model {model} --params {params}

`--train` is a Parquet file of the training rows (the feature columns and the target, never a holdout row),
`--model` an empty folder for the MLflow model, `--params` (optional) a JSON object of LightGBM parameters
(`MLOPS_ESTIMATOR_PARAMS`) over the defaults below. Which column is the target, the task and the seed come from
the environment: MLOPS_TARGET_COLUMN, MLOPS_TASK (regression, binary, multiclass), MLOPS_SEED.

The saved model is a scikit-learn pipeline, `DerivedFeatures` (features.py) then LightGBM's scikit-learn
estimator, in MLflow's sklearn flavor: it takes the raw columns of the Parquet file (minus the target), derives
the features itself, predicts values (regression) or class labels, and has `predict_proba`, so the platform
scores its probabilities too (ROC AUC, log loss). features.py travels inside the model (`code_paths`), so
wherever the model loads, the same feature code runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
from features import DerivedFeatures
from sklearn.pipeline import Pipeline

HERE = Path(__file__).resolve().parent
# Small trees, slow learning: made for a few hundred rows (5-fold R² 0.48 on scikit-learn's diabetes data).
DEFAULTS = {
    "n_estimators": 300,
    "learning_rate": 0.02,
    "num_leaves": 4,
    "min_child_samples": 20,
    "reg_lambda": 1.0,
    "subsample": 0.9,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "verbose": -1,
}
TASKS = ("regression", "binary", "multiclass")


def build(task: str, params: dict, seed: int) -> Pipeline:
    import lightgbm

    estimator = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    model = estimator(**{**DEFAULTS, "random_state": seed, "n_jobs": 1, **params})
    return Pipeline([("features", DerivedFeatures()), ("lightgbm", model)])


def train(train_path: Path, model_dir: Path, params_path: Path | None) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    target = os.environ.get("MLOPS_TARGET_COLUMN", "target")
    task = os.environ.get("MLOPS_TASK", "regression")
    seed = int(os.environ.get("MLOPS_SEED", "42"))
    if task not in TASKS:
        raise SystemExit(f"MLOPS_TASK must be one of {', '.join(TASKS)}, not {task!r}")
    params = json.loads(params_path.read_text()) if params_path is not None else {}
    if not isinstance(params, dict):
        raise SystemExit(f"{params_path} must hold a JSON object of LightGBM parameters")
    rows = pd.read_parquet(train_path)
    if target not in rows.columns:
        raise SystemExit(f"the training rows have no {target!r} column (MLOPS_TARGET_COLUMN)")
    x, y = rows.drop(columns=[target]), rows[target]
    pipeline = build(task, params, seed).fit(x, y)
    sample = x.head(5)
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)  # its warning that pickle runs code on load
    mlflow.sklearn.save_model(
        pipeline,
        str(model_dir),
        signature=infer_signature(sample, pipeline.predict(sample)),
        code_paths=[str(HERE / "features.py")],
        # listed, not inferred (inferring them costs seconds): what the model needs wherever it is served
        pip_requirements=[
            f"{name}=={metadata.version(name)}"
            for name in ("lightgbm", "scikit-learn", "pandas", "numpy", "mlflow", "cloudpickle")
        ],
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    )
    print(f"trained LightGBM ({task}) on {len(rows)} rows, {x.shape[1]} raw columns", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path, required=True, help="Parquet file of the training rows")
    parser.add_argument("--model", type=Path, required=True, help="empty folder for the MLflow model")
    parser.add_argument("--params", type=Path, default=None, help="JSON object of LightGBM parameters")
    args = parser.parse_args()
    train(args.train, args.model, args.params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
