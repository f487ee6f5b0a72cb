"""The job's `config.json`, validated once with errors that name the offending field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.training.errors import TrainingInputError
from shared.training.metrics import TASK_METRICS

_REQUIRED = ("task", "target", "primary_metric", "estimator", "holdout_fraction", "seed")
# Optional keys default so that a config written before they existed still runs the same way.
DEFAULT_BOOTSTRAP_RESAMPLES = 1000
DEFAULT_CONFIDENCE_LEVEL = 0.95
MIN_BOOTSTRAP_RESAMPLES = 100
MAX_BOOTSTRAP_RESAMPLES = 100_000
DEFAULT_SLICE_MIN_ROWS = 30


@dataclass(frozen=True)
class TrainingConfig:
    task: str
    target: str
    features: tuple[str, ...] | None
    primary_metric: str
    estimator: str
    estimator_params: dict[str, Any] = field(default_factory=dict)
    holdout_fraction: float = 0.2
    seed: int = 42
    key_columns: tuple[str, ...] | None = None
    bootstrap_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL
    slice_columns: tuple[str, ...] = ()
    slice_min_rows: int = DEFAULT_SLICE_MIN_ROWS
    sensitive_column: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainingConfig:
        if not isinstance(raw, dict):
            raise TrainingInputError("config must be a JSON object")
        missing = [key for key in _REQUIRED if raw.get(key) in (None, "")]
        if missing:
            raise TrainingInputError(f"config is missing {', '.join(missing)}")
        task = str(raw["task"]).lower()
        if task not in TASK_METRICS:
            raise TrainingInputError(
                f"config task must be one of {sorted(TASK_METRICS)}, not {raw['task']!r}"
            )
        primary = str(raw["primary_metric"])
        if primary not in TASK_METRICS[task]:
            raise TrainingInputError(
                f"primary_metric {primary!r} is not measured for task {task}; "
                f"choose one of {list(TASK_METRICS[task])}"
            )
        features = raw.get("features")
        if features is not None and (
            not isinstance(features, list) or not all(isinstance(f, str) and f for f in features)
        ):
            raise TrainingInputError("config features must be a list of column names or null")
        params = raw.get("estimator_params") or {}
        if not isinstance(params, dict):
            raise TrainingInputError("config estimator_params must be a JSON object")
        try:
            fraction = float(raw["holdout_fraction"])
            seed = int(raw["seed"])
        except (TypeError, ValueError) as error:
            raise TrainingInputError(f"config holdout_fraction / seed are not numbers: {error}") from None
        if not 0.0 < fraction < 1.0:
            raise TrainingInputError(f"config holdout_fraction must be between 0 and 1, not {fraction}")
        target = str(raw["target"])
        if features and target in features:
            raise TrainingInputError(f"the target column {target!r} is also listed as a feature")
        keys = raw.get("key_columns")
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys)
        ):
            raise TrainingInputError("config key_columns must be a list of column names or null")
        resamples, level = _bootstrap(raw)
        slices, min_rows, sensitive = _segments(raw)
        return cls(
            task=task,
            target=target,
            features=tuple(features) if features else None,
            primary_metric=primary,
            estimator=str(raw["estimator"]),
            estimator_params=dict(params),
            holdout_fraction=fraction,
            seed=seed,
            key_columns=tuple(keys) if keys else None,
            bootstrap_resamples=resamples,
            confidence_level=level,
            slice_columns=slices,
            slice_min_rows=min_rows,
            sensitive_column=sensitive,
        )


def _bootstrap(raw: dict[str, Any]) -> tuple[int, float]:
    resamples = raw.get("bootstrap_resamples")
    level = raw.get("confidence_level")
    try:
        resamples = DEFAULT_BOOTSTRAP_RESAMPLES if resamples is None else int(resamples)
        level = DEFAULT_CONFIDENCE_LEVEL if level is None else float(level)
    except (TypeError, ValueError) as error:
        raise TrainingInputError(
            f"config bootstrap_resamples / confidence_level are not numbers: {error}"
        ) from None
    if not MIN_BOOTSTRAP_RESAMPLES <= resamples <= MAX_BOOTSTRAP_RESAMPLES:
        raise TrainingInputError(
            f"config bootstrap_resamples must be between {MIN_BOOTSTRAP_RESAMPLES} and "
            f"{MAX_BOOTSTRAP_RESAMPLES}, not {resamples}"
        )
    if not 0.5 <= level < 1.0:
        raise TrainingInputError(f"config confidence_level must be in [0.5, 1), not {level}")
    return resamples, level


def _segments(raw: dict[str, Any]) -> tuple[tuple[str, ...], int, str | None]:
    columns = raw.get("slice_columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
        raise TrainingInputError("config slice_columns must be a list of column names or null")
    min_rows = raw.get("slice_min_rows")
    if min_rows is None:
        min_rows = DEFAULT_SLICE_MIN_ROWS
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 2:
        raise TrainingInputError(f"config slice_min_rows must be an integer of at least 2, not {min_rows!r}")
    sensitive = raw.get("sensitive_column")
    if sensitive is not None and (not isinstance(sensitive, str) or not sensitive):
        raise TrainingInputError("config sensitive_column must be a column name or null")
    return tuple(columns), min_rows, sensitive
