"""The built-in trainer, a training project like any team's, behind the same contract:

    python -m shared.training.builtin --train TRAIN.parquet --model MODEL_DIR [--params PARAMS.json]

It fits the scikit-learn estimator `MLOPS_ESTIMATOR` names (with the parameters of `--params`) in a pipeline
that imputes and encodes, on the training rows only, and saves an MLflow model. Which column is the target, the
task and the seed reach it as environment variables (`MLOPS_TARGET_COLUMN`, `MLOPS_TASK`, `MLOPS_SEED`), as they
reach any team's command. It never sees the holdout, and its own opinion of the model counts for nothing: the
platform's evaluation decides.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from shared.training.errors import TrainingInputError

EXIT_BAD_INPUT = 2


def fit(train_x: Any, train_y: Any, estimator: str, params: dict[str, Any], seed: int) -> Any:
    """The fitted pipeline (shared with the in-process run, so both are one trainer)."""
    import shared.training.model as model

    pipeline = model.build_pipeline(model.build_estimator(estimator, params, seed), train_x)
    try:
        pipeline.fit(train_x, train_y)
    except ValueError as error:
        raise TrainingInputError(f"{estimator} could not be fitted on this data: {error}") from None
    return pipeline


def train(train_path: Path, model_dir: Path, params_path: Path | None, env: dict[str, str]) -> None:
    import pandas as pd

    import shared.training.model as model

    target = env.get("MLOPS_TARGET_COLUMN", "target")
    estimator = env.get("MLOPS_ESTIMATOR", "")
    if not estimator:
        raise TrainingInputError("MLOPS_ESTIMATOR names no estimator")
    frame = pd.read_parquet(train_path)
    if target not in frame.columns:
        raise TrainingInputError(f"the training rows have no {target!r} column")
    params = json.loads(params_path.read_text()) if params_path is not None else {}
    if not isinstance(params, dict):
        raise TrainingInputError("the parameters file must hold a JSON object")
    train_x, train_y = frame.drop(columns=[target]), frame[target]
    pipeline = fit(train_x, train_y, estimator, params, int(env.get("MLOPS_SEED", "42")))
    model.save_model(pipeline, model_dir, train_x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.training.builtin", description=__doc__)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        train(args.train, args.model, args.params, dict(os.environ))
    except TrainingInputError as error:
        print(f"training: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
