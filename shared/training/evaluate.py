"""Our evaluation of a trained model, whoever trained it: load the challenger from its MLflow folder (any flavor
that loads as `mlflow.pyfunc`; a scikit-learn one natively, so its class probabilities are scored too), score it
and the champion on the same holdout, run the paired bootstrap, and write `evaluation.json` with the smoke
sample. The training command never sees the holdout: it is derived here, again, from the data."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import shared.training.comparison as comparison
import shared.training.metrics as metrics
import shared.training.model as model
import shared.training.provenance as provenance
import shared.training.slices as slices
import shared.training.tracking as tracking
from shared.training.errors import TrainingInputError
from shared.training.split import Split

SMOKE_ROWS = 20


def evaluate(
    split: Split,
    model_dir: Path,
    output: Path,
    champion: Path | None = None,
    run_id: str = "",
    code: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score the model saved in `model_dir` (copied to `output/model`, what gets registered) and write
    `output/evaluation.json`. `code`: the provenance of the training code (default: the built-in trainer's)."""
    settings = split.settings
    model_dir, output = Path(model_dir), Path(output)
    challenger, columns = _load_challenger(model_dir)
    holdout = split.holdout_columns
    columns = _input_columns(columns, split.features, holdout)
    truth = split.holdout_y
    try:
        challenger_outputs = metrics.outputs(settings.task, challenger, holdout[columns], split.labels)
    except Exception as error:  # the user's model, scoring: any failure is the model's, and named as such
        raise TrainingInputError(
            f"the model cannot score the holdout's columns {columns}: {type(error).__name__}: {error}"
        ) from None
    challenger_scores = metrics.score_outputs(settings.task, challenger_outputs, truth, split.labels)
    if settings.primary_metric not in challenger_scores:
        raise TrainingInputError(
            f"primary metric {settings.primary_metric} cannot be measured on this holdout "
            f"({int(split.in_holdout.sum())} rows); add rows or change holdout_fraction"
        )
    champion_scores = champion_outputs = None
    if champion is not None:
        champion_outputs, champion_scores = _score_champion(Path(champion), split, truth)
    difference = _difference(challenger_scores, champion_scores)
    paired = None
    if champion_outputs is not None and difference is not None:
        paired = _compare(split, truth, challenger_outputs, champion_outputs, difference)

    output.mkdir(parents=True, exist_ok=True)
    registered = output / "model"
    if registered.resolve() != model_dir.resolve():
        if registered.exists():
            shutil.rmtree(registered)
        shutil.copytree(model_dir, registered)
    evaluation = {
        "run_id": run_id,
        "dataset_version": split.dataset_version,
        "task": settings.task,
        "target": settings.target,
        "features": columns,
        "primary_metric": settings.primary_metric,
        "greater_is_better": metrics.greater_is_better(settings.primary_metric),
        "rows": split.rows(),
        "challenger": challenger_scores,
        "champion": champion_scores,
        "difference": difference,
        "comparison": paired,
        "slices": slices.slice_comparison(split, truth, challenger_outputs, champion_outputs),
        "fairness": slices.fairness(split, truth, challenger_outputs, champion_outputs),
        "metric_directions": {
            name: "maximize" if metrics.greater_is_better(name) else "minimize"
            for name in metrics.TASK_METRICS[settings.task]
        },
        "holdout": {
            "method": "row-hash",
            "fraction": settings.holdout_fraction,
            "key_columns": list(settings.key_columns) if settings.key_columns else None,
        },
        "estimator": settings.estimator
        if (code or provenance.code_provenance())["code"]["built_in"]
        else None,
        "seed": settings.seed,
        "smoke": _smoke_sample(challenger, holdout[columns]),
        "model_sha256": provenance.folder_sha256(registered),
        **(code or provenance.code_provenance()),
    }
    _write_json(output / "evaluation.json", evaluation)
    if tracking.tracking_enabled():
        tracking.track_or_warn(evaluation, settings.estimator_params, output)
    return evaluation


def _load_challenger(path: Path) -> tuple[Any, list[str] | None]:
    if not path.is_dir() or not any(path.iterdir()):
        raise TrainingInputError(f"the training command saved no model in {path} (the folder is empty)")
    if not (path / "MLmodel").is_file():
        raise TrainingInputError(
            f"the training command saved no MLflow model in {path} (no MLmodel file; save one with "
            "mlflow.<flavor>.save_model)"
        )
    try:
        return model.load_model(path)
    except Exception as error:  # whatever a foreign flavor raises while loading
        raise TrainingInputError(
            f"the model in {path} does not load: {type(error).__name__}: {error}"
        ) from None


def _input_columns(signature: list[str] | None, features: list[str], holdout: pd.DataFrame) -> list[str]:
    """The model's own input columns (its signature) when it has them, else the configured features."""
    if not signature:
        return features
    absent = [c for c in signature if c not in holdout.columns]
    if absent:
        raise TrainingInputError(f"the model needs columns the holdout does not have: {absent}")
    return signature


def _smoke_sample(challenger: Any, rows: pd.DataFrame) -> dict[str, Any]:
    """Holdout rows and this model's own predictions for them: a new deployment must answer the same."""
    rows = rows.head(SMOKE_ROWS)
    predictions = np.asarray(challenger.predict(rows)).reshape(len(rows), -1)[:, 0]
    data = [[None if _missing(v) else _plain(v) for v in row] for row in rows.itertuples(index=False)]
    return {"columns": list(rows.columns), "data": data, "predictions": [_plain(p) for p in predictions]}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _score_champion(path: Path, split: Split, truth: np.ndarray) -> tuple[metrics.Outputs, dict[str, float]]:
    try:
        champion, columns = model.load_model(path)
    except ImportError as error:  # the champion was trained with libraries this environment lacks
        raise TrainingInputError(
            f"the champion cannot be loaded where the challenger is evaluated ({error}): add what it needs to "
            "the training environment (MLOPS_TRAINING_ENVIRONMENT), so both are scored on the same holdout"
        ) from None
    columns = columns or split.features
    holdout = split.holdout_columns
    absent = [c for c in columns if c not in holdout.columns]
    if absent:
        raise TrainingInputError(f"the champion needs columns the data no longer has: {absent}")
    settings = split.settings
    outputs = metrics.outputs(settings.task, champion, holdout[columns], split.labels)
    scores = metrics.score_outputs(settings.task, outputs, truth, split.labels)
    if settings.primary_metric not in scores:
        print(f"warning: the champion's {settings.primary_metric} could not be measured", file=sys.stderr)
    return outputs, scores


def _compare(
    split: Split,
    truth: np.ndarray,
    challenger: metrics.Outputs,
    champion: metrics.Outputs,
    difference: dict[str, float],
) -> dict[str, Any]:
    settings = split.settings
    metric = settings.primary_metric
    options = {
        "resamples": settings.bootstrap_resamples,
        "level": settings.confidence_level,
        "seed": settings.seed,
    }
    if metric not in difference:
        return comparison.unavailable(metric, **options, reason=f"the champion's {metric} was not measured")
    return comparison.paired_bootstrap(
        settings.task,
        metric,
        truth,
        challenger,
        champion,
        split.labels,
        observed=difference[metric],
        **options,
    )


def _difference(challenger: dict[str, float], champion: dict[str, float] | None) -> dict[str, float] | None:
    if champion is None:
        return None
    return {name: value - champion[name] for name, value in challenger.items() if name in champion}


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    partial.replace(path)
