"""Before the training command: the training rows as one Parquet file, the parameters as JSON, and the settings
the command reads from its environment. The holdout rows are not written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.training.config import TrainingConfig
from shared.training.split import Split

TRAIN_FILE = "train.parquet"
PARAMS_FILE = "params.json"


def prepare(split: Split, folder: Path, run_id: str = "") -> dict[str, Any]:
    """Write `train.parquet` (the training rows: the feature columns and the target, prepared as the
    evaluation prepares the holdout) and `params.json` into `folder`; returns what was written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = split.settings
    rows = split.train_x.copy()
    rows[settings.target] = split.train_y.to_numpy()
    rows.reset_index(drop=True).to_parquet(folder / TRAIN_FILE, index=False)
    (folder / PARAMS_FILE).write_text(json.dumps(settings.estimator_params, indent=1), encoding="utf-8")
    return {
        "train": str(folder / TRAIN_FILE),
        "params": str(folder / PARAMS_FILE),
        "rows": len(rows),
        "features": split.features,
        "target": settings.target,
        "environment": command_environment(settings, run_id),
    }


def command_environment(settings: TrainingConfig, run_id: str = "") -> dict[str, str]:
    """The settings a training command reads, as environment variables (strings)."""
    return {
        "MLOPS_TASK": settings.task,
        "MLOPS_TARGET_COLUMN": settings.target,
        "MLOPS_FEATURE_COLUMNS": ",".join(settings.features or ()),
        "MLOPS_PRIMARY_METRIC": settings.primary_metric,
        "MLOPS_ESTIMATOR": settings.estimator,
        "MLOPS_SEED": str(settings.seed),
        "MLOPS_RUN_ID": run_id,
    }
