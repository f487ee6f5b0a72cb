"""One scikit-learn script behind the platform's training contract:

    python train.py --train {train} --model {model} --params {params}

`--train` is a Parquet file of the training rows (features and target, never a holdout row), `--model` an empty
folder for the MLflow model, `--params` (optional) a JSON object of HistGradientBoosting parameters
(`MLOPS_ESTIMATOR_PARAMS`). The target column, the task and the seed come from the environment:
MLOPS_TARGET_COLUMN, MLOPS_TASK (regression, binary, multiclass), MLOPS_SEED.

The model is a Pipeline (text columns one-hot encoded, numbers as they are: histogram gradient boosting bins
them and handles missing values itself) saved with `mlflow.sklearn.save_model`, so it takes the raw columns and
the platform scores its class probabilities too.
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
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

# Small trees, slow learning: made for a few hundred rows (5-fold R² 0.46 on scikit-learn's diabetes data).
DEFAULTS = {
    "max_iter": 300,
    "learning_rate": 0.02,
    "max_leaf_nodes": 4,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
}
# Threads for the fit. On a few hundred rows more threads cost more than they save, and on a busy machine
# OpenMP's waiting threads cost a lot (here: 4 s with one, 6 to 23 s with two on two busy cores). Raise it for
# large data.
THREADS = 1


def build(task: str, params: dict, seed: int) -> Pipeline:
    estimator = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    encode = ColumnTransformer(
        [
            (
                "text",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                make_column_selector(dtype_exclude="number"),
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    return Pipeline(
        [("encode", encode), ("model", estimator(**{**DEFAULTS, "random_state": seed, **params}))]
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=None)
    args = parser.parse_args()

    import mlflow.sklearn
    from mlflow.models import infer_signature

    target = os.environ.get("MLOPS_TARGET_COLUMN", "target")
    task = os.environ.get("MLOPS_TASK", "regression")
    params = json.loads(args.params.read_text()) if args.params else {}
    rows = pd.read_parquet(args.train)
    x, y = rows.drop(columns=[target]), rows[target]
    with threadpool_limits(limits=THREADS):
        pipeline = build(task, params, int(os.environ.get("MLOPS_SEED", "42"))).fit(x, y)
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)  # its warning that pickle runs code on load
    mlflow.sklearn.save_model(
        pipeline,
        str(args.model),
        signature=infer_signature(x.head(5), pipeline.predict(x.head(5))),
        # listed, not inferred: inferring them costs ~9 s
        pip_requirements=[
            f"{name}=={metadata.version(name)}"
            for name in ("scikit-learn", "pandas", "numpy", "mlflow", "cloudpickle")
        ],
        # cloudpickle, not MLflow 3's default skops, which refuses HistGradientBoosting unless trusted by hand
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    )
    print(f"trained {type(pipeline[-1]).__name__} on {len(rows)} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
