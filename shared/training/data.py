"""Reads exactly the files a dataset manifest names, each checked against its sha256; types the columns."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.training.errors import TrainingInputError

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_paths(manifest: dict[str, Any], data_dir: Path) -> list[Path]:
    """The manifest's files under `data_dir`, in manifest order, each verified; never a folder listing."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not files or not isinstance(files, list):
        raise TrainingInputError("manifest lists no files")
    root = data_dir.resolve()
    paths = []
    for entry in files:
        if not isinstance(entry, dict) or not entry.get("path") or not entry.get("sha256"):
            raise TrainingInputError(f"manifest file entry needs 'path' and 'sha256': {entry!r}")
        path = (root / entry["path"]).resolve()
        if not path.is_relative_to(root):
            raise TrainingInputError(f"manifest path {entry['path']!r} leaves the data directory")
        if not path.is_file():
            raise TrainingInputError(f"manifest file {entry['path']!r} is not in {data_dir}")
        actual = sha256_of(path)
        if actual != str(entry["sha256"]).lower():
            raise TrainingInputError(
                f"sha256 mismatch for {entry['path']!r} ({entry.get('name', '?')}): "
                f"manifest says {entry['sha256']}, file has {actual}"
            )
        paths.append(path)
    return paths


def read_dataset(manifest: dict[str, Any], data_dir: Path) -> pd.DataFrame:
    frames = []
    for entry, path in zip(manifest["files"], manifest_paths(manifest, data_dir), strict=True):
        frame = _read_file(path)
        expected = entry.get("rows")
        if isinstance(expected, int) and expected != len(frame):
            print(
                f"warning: {entry['path']} has {len(frame)} rows, manifest says {expected}",
                file=sys.stderr,
            )
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    if data.empty:
        raise TrainingInputError("the dataset has no rows")
    data.columns = [str(column) for column in data.columns]
    return data


def _read_file(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise TrainingInputError(f"{path.name} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise TrainingInputError(f"{path.name} could not be read: {error}") from None


def prepare_features(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Numbers become float64 (so the signature says double and a client's ints convert safely);
    everything else becomes strings, so one-hot encoding never sees mixed types from different files."""
    prepared = {}
    for column in columns:
        values = frame[column]
        numeric = _as_numeric(values)
        if numeric is not None:
            prepared[column] = numeric
        else:
            prepared[column] = values.map(lambda v: v if _missing(v) else str(v)).astype(object)
    return pd.DataFrame(prepared, index=frame.index)


def prepare_target(values: pd.Series, task: str, name: str) -> pd.Series:
    numeric = _as_numeric(values)
    if task == "regression":
        if numeric is None:
            raise TrainingInputError(f"target column {name!r} is not numeric, so it cannot be regressed")
        return numeric
    if numeric is not None:
        finite = numeric.to_numpy()
        if np.all(np.isfinite(finite)) and np.all(finite == np.round(finite)):
            return numeric.astype(np.int64)
        return numeric
    return values.map(str).astype(object)


def _as_numeric(values: pd.Series) -> pd.Series | None:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        if pd.api.types.is_complex_dtype(values):
            return None
        return values.astype(np.float64)
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        present = values.map(lambda v: np.nan if _missing(v) else (float(v) if isinstance(v, bool) else v))
        converted = pd.to_numeric(present, errors="coerce")
        count = int(present.notna().sum())
        if count and int(converted.notna().sum()) == count:
            return converted.astype(np.float64)
    return None


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value
