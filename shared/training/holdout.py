"""Holdout by row content, so a row never changes sides as the dataset grows.

A row's key is the sha256 of its canonical content: the (column, value) pairs of its present values, in sorted
column order, with every number written the same way whatever its type (1, 1.0, "1" and True are all "1").
Missing values are left out, so adding a column to later files does not move the earlier rows. A row is in
the holdout iff int(key, 16) % 10000 < round(fraction * 10000). No seed takes part: the holdout must not move
between runs. Identical rows share a key, so a duplicate can never sit on both sides.

With key columns (say a patient id), only those columns are hashed: every row of one patient lands on the same
side, so a model is never scored on a patient it was trained on, and correcting a row's other values never
moves it across.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pandas as pd

BUCKETS = 10_000


def row_keys(frame: pd.DataFrame, columns: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """One key per row: of the given columns only, or of the whole row when `columns` is None."""
    columns = sorted(frame.columns if columns is None else columns, key=str)
    canonical = [_canonical_column(frame[column]) for column in columns]
    names = [str(column) for column in columns]
    keys = []
    for values in zip(*canonical, strict=True):
        content = json.dumps(
            [[name, value] for name, value in zip(names, values, strict=True) if value is not None],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        keys.append(hashlib.sha256(content.encode("utf-8")).hexdigest())
    return keys


def holdout_mask(keys: list[str], fraction: float) -> np.ndarray:
    threshold = round(fraction * BUCKETS)
    return np.fromiter((int(key, 16) % BUCKETS < threshold for key in keys), dtype=bool, count=len(keys))


def _canonical_column(values: pd.Series) -> list[str | None]:
    if pd.api.types.is_bool_dtype(values) or (
        pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_complex_dtype(values)
    ):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return [None if math.isnan(number) else _number(number) for number in numbers.tolist()]
    return [_canonical_value(value) for value in values.tolist()]


def _canonical_value(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | int | float | np.number):
        number = float(value)
        return None if math.isnan(number) else _number(number)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return None if math.isnan(number) else _number(number)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _number(number: float) -> str:
    # 12 significant digits: 1 == 1.0, and float noise such as 0.30000000000000004 == 0.3.
    text = format(number, ".12g")
    return "0" if text == "-0" else text
