"""One training run: read the manifest's data, split by row hash, fit, score challenger and champion on the
same holdout, save the model folder and `evaluation.json`, and track in MLflow when configured."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import shared.training.comparison as comparison
import shared.training.data as data
import shared.training.holdout as holdout
import shared.training.metrics as metrics
import shared.training.model as model
import shared.training.provenance as provenance
import shared.training.tracking as tracking
from shared.training.config import TrainingConfig
from shared.training.errors import TrainingInputError


def run_training(
    manifest: dict[str, Any],
    data_dir: Path,
    config: dict[str, Any],
    output: Path,
    champion: Path | None = None,
    run_id: str = "",
) -> dict[str, Any]:
    settings = TrainingConfig.from_dict(config)
    dataset_version = str(manifest.get("id", "")) if isinstance(manifest, dict) else ""
    frame = data.read_dataset(manifest, Path(data_dir))
    frame = _with_target(frame, settings.target)

    in_holdout, frame = _split(frame, settings)
    feature_names = _feature_names(frame, settings)
    columns = data.prepare_features(frame, [c for c in frame.columns if c != settings.target])
    target = data.prepare_target(frame[settings.target], settings.task, settings.target)
    labels = _labels(target, settings.task)

    train_x, train_y = columns.loc[~in_holdout, feature_names], target[~in_holdout]
    test_x, test_y = columns.loc[in_holdout, feature_names], target[in_holdout]
    estimator = model.build_estimator(settings.estimator, settings.estimator_params, settings.seed)
    challenger = model.build_pipeline(estimator, train_x)
    try:
        challenger.fit(train_x, train_y)
    except ValueError as error:
        raise TrainingInputError(f"{settings.estimator} could not be fitted on this data: {error}") from None

    challenger_outputs = metrics.outputs(settings.task, challenger, test_x, labels)
    truth = test_y.to_numpy()
    challenger_scores = metrics.score_outputs(settings.task, challenger_outputs, truth, labels)
    if settings.primary_metric not in challenger_scores:
        raise TrainingInputError(
            f"primary metric {settings.primary_metric} cannot be measured on this holdout "
            f"({int(in_holdout.sum())} rows); add rows or change holdout_fraction"
        )
    champion_scores = champion_outputs = None
    if champion is not None:
        champion_outputs, champion_scores = _score_champion(
            Path(champion), settings, feature_names, columns.loc[in_holdout], truth, labels
        )
    difference = _difference(challenger_scores, champion_scores)
    paired = None
    if champion_outputs is not None and difference is not None:
        paired = _compare(settings, truth, challenger_outputs, champion_outputs, labels, difference)

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_model(challenger, output / "model", train_x)
    evaluation = {
        "run_id": run_id,
        "dataset_version": dataset_version,
        "task": settings.task,
        "target": settings.target,
        "features": feature_names,
        "primary_metric": settings.primary_metric,
        "greater_is_better": metrics.greater_is_better(settings.primary_metric),
        "rows": {"train": int((~in_holdout).sum()), "holdout": int(in_holdout.sum())},
        "challenger": challenger_scores,
        "champion": champion_scores,
        "difference": difference,
        "comparison": paired,
        "metric_directions": {
            name: "maximize" if metrics.greater_is_better(name) else "minimize"
            for name in metrics.TASK_METRICS[settings.task]
        },
        "holdout": {
            "method": "row-hash",
            "fraction": settings.holdout_fraction,
            "key_columns": list(settings.key_columns) if settings.key_columns else None,
        },
        "estimator": settings.estimator,
        "seed": settings.seed,
        "smoke": _smoke_sample(challenger, test_x),
        **provenance.code_provenance(),
    }
    _write_json(output / "evaluation.json", evaluation)
    if tracking.tracking_enabled():
        tracking.track(evaluation, settings.estimator_params, output)
    return evaluation


SMOKE_ROWS = 20


def _smoke_sample(challenger: Any, test_x: pd.DataFrame) -> dict[str, Any]:
    """Holdout rows and this model's own predictions for them: a new deployment must answer the same."""
    rows = test_x.head(SMOKE_ROWS)
    predictions = challenger.predict(rows)
    data = [[None if _missing(v) else _plain(v) for v in row] for row in rows.itertuples(index=False)]
    return {"columns": list(rows.columns), "data": data, "predictions": [_plain(p) for p in predictions]}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _with_target(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    if target not in frame.columns:
        raise TrainingInputError(
            f"target column {target!r} is not in the data (columns: {list(frame.columns)})"
        )
    missing = frame[target].isna()
    if missing.all():
        raise TrainingInputError(f"target column {target!r} has no values")
    if missing.any():
        print(f"warning: {int(missing.sum())} rows without a {target!r} value are left out", file=sys.stderr)
        frame = frame.loc[~missing]
    return frame


def _split(frame: pd.DataFrame, settings: TrainingConfig) -> tuple[np.ndarray, pd.DataFrame]:
    """The holdout mask and the frame in a canonical order (by holdout key, then by the whole row's key),
    so the fit depends only on the set of rows, never on file order."""
    content_keys = holdout.row_keys(frame)
    if settings.key_columns is None:
        split_keys = content_keys
    else:
        absent = [c for c in settings.key_columns if c not in frame.columns]
        if absent:
            raise TrainingInputError(f"key columns {absent} are not in the data")
        split_keys = holdout.row_keys(frame, settings.key_columns)
    order = np.lexsort((np.asarray(content_keys), np.asarray(split_keys)))
    frame = frame.iloc[order].reset_index(drop=True)
    in_holdout = holdout.holdout_mask([split_keys[i] for i in order], settings.holdout_fraction)
    if in_holdout.all() or not in_holdout.any():
        side = "holdout" if not in_holdout.any() else "training set"
        raise TrainingInputError(
            f"the {side} is empty ({len(frame)} rows, holdout_fraction={settings.holdout_fraction}); "
            "add rows or change holdout_fraction"
        )
    return in_holdout, frame


def _feature_names(frame: pd.DataFrame, settings: TrainingConfig) -> list[str]:
    if settings.features is None:
        names = [c for c in frame.columns if c != settings.target]
    else:
        absent = [c for c in settings.features if c not in frame.columns]
        if absent:
            raise TrainingInputError(f"feature columns {absent} are not in the data")
        names = list(settings.features)
    if not names:
        raise TrainingInputError("there are no feature columns besides the target")
    return names


def _labels(target: pd.Series, task: str) -> list[Any]:
    if task == "regression":
        return []
    labels = sorted({value.item() if hasattr(value, "item") else value for value in target.unique()})
    if task == "binary" and len(labels) != 2:
        raise TrainingInputError(f"a binary task needs exactly 2 target classes, the data has {len(labels)}")
    if task == "multiclass" and len(labels) < 2:
        raise TrainingInputError("a multiclass task needs at least 2 target classes")
    return labels


def _score_champion(
    path: Path,
    settings: TrainingConfig,
    feature_names: list[str],
    holdout_columns: pd.DataFrame,
    truth: np.ndarray,
    labels: list[Any],
) -> tuple[metrics.Outputs, dict[str, float]]:
    champion, columns = model.load_champion(path)
    columns = columns or feature_names
    absent = [c for c in columns if c not in holdout_columns.columns]
    if absent:
        raise TrainingInputError(f"the champion needs columns the data no longer has: {absent}")
    outputs = metrics.outputs(settings.task, champion, holdout_columns[columns], labels)
    scores = metrics.score_outputs(settings.task, outputs, truth, labels)
    if settings.primary_metric not in scores:
        print(f"warning: the champion's {settings.primary_metric} could not be measured", file=sys.stderr)
    return outputs, scores


def _compare(
    settings: TrainingConfig,
    truth: np.ndarray,
    challenger: metrics.Outputs,
    champion: metrics.Outputs,
    labels: list[Any],
    difference: dict[str, float],
) -> dict[str, Any]:
    metric = settings.primary_metric
    options = {
        "resamples": settings.bootstrap_resamples,
        "level": settings.confidence_level,
        "seed": settings.seed,
    }
    if metric not in difference:
        return comparison.unavailable(metric, **options, reason=f"the champion's {metric} was not measured")
    return comparison.paired_bootstrap(
        settings.task, metric, truth, challenger, champion, labels, observed=difference[metric], **options
    )


def _difference(challenger: dict[str, float], champion: dict[str, float] | None) -> dict[str, float] | None:
    if champion is None:
        return None
    return {name: value - champion[name] for name, value in challenger.items() if name in champion}


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    partial.replace(path)
