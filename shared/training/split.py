"""The data of a run, split once and the same way by every stage: rows with a target, in a canonical order, the
holdout chosen by row hash. Training sees only the training rows; evaluation derives the same holdout again from
the same data, so no holdout file exists while the training command runs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import shared.training.data as data
import shared.training.holdout as holdout
from shared.training.config import TrainingConfig
from shared.training.errors import TrainingInputError


@dataclass(frozen=True)
class Split:
    settings: TrainingConfig
    dataset_version: str
    features: list[str]  # the feature columns, in the order models see them
    columns: pd.DataFrame  # every prepared column but the target, all rows
    target: pd.Series  # prepared, all rows
    in_holdout: np.ndarray
    labels: list[Any]  # the classes, sorted (empty for regression)

    @property
    def train_x(self) -> pd.DataFrame:
        return self.columns.loc[~self.in_holdout, self.features]

    @property
    def train_y(self) -> pd.Series:
        return self.target[~self.in_holdout]

    @property
    def holdout_columns(self) -> pd.DataFrame:
        return self.columns.loc[self.in_holdout]

    @property
    def holdout_x(self) -> pd.DataFrame:
        return self.columns.loc[self.in_holdout, self.features]

    @property
    def holdout_y(self) -> np.ndarray:
        return self.target[self.in_holdout].to_numpy()

    def rows(self) -> dict[str, int]:
        return {"train": int((~self.in_holdout).sum()), "holdout": int(self.in_holdout.sum())}


def load(manifest: dict[str, Any], data_dir: Path, config: dict[str, Any]) -> Split:
    settings = TrainingConfig.from_dict(config)
    dataset_version = str(manifest.get("id", "")) if isinstance(manifest, dict) else ""
    frame = _with_target(data.read_dataset(manifest, Path(data_dir)), settings.target)
    in_holdout, frame = _split(frame, settings)
    features = _feature_names(frame, settings)
    columns = data.prepare_features(frame, [c for c in frame.columns if c != settings.target])
    target = data.prepare_target(frame[settings.target], settings.task, settings.target)
    return Split(
        settings, dataset_version, features, columns, target, in_holdout, _labels(target, settings.task)
    )


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
