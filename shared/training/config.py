"""The job's `config.json`, validated once with errors that name the offending field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.training.errors import TrainingInputError
from shared.training.metrics import TASK_METRICS

_REQUIRED = ("task", "target", "primary_metric", "estimator", "holdout_fraction", "seed")


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
        return cls(
            task=task,
            target=target,
            features=tuple(features) if features else None,
            primary_metric=primary,
            estimator=str(raw["estimator"]),
            estimator_params=dict(params),
            holdout_fraction=fraction,
            seed=seed,
        )
