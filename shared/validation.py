"""Checks a landed file before anything trains on it: format, size, encoding, schema, rows, nulls."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_FORMATS = (".csv", ".parquet")


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    min_rows: int
    target: str


@dataclass(frozen=True)
class Validation:
    ok: bool
    reasons: tuple[str, ...]
    sha256: str
    rows: int = 0
    schema: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reasons": list(self.reasons), "sha256": self.sha256, "rows": self.rows}


def validate(name: str, data: bytes, schema: dict[str, str] | None, limits: Limits) -> Validation:
    """Validate `data`; `schema` maps column to kind ("number" or "text"), None to learn it from this file."""
    sha = hashlib.sha256(data).hexdigest()

    def reject(*reasons: str, rows: int = 0) -> Validation:
        return Validation(False, reasons, sha, rows)

    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    if suffix not in SUPPORTED_FORMATS:
        return reject(f"format {suffix or '(none)'} is not one of {', '.join(SUPPORTED_FORMATS)}")
    if len(data) > limits.max_bytes:
        return reject(f"file has {len(data)} bytes, more than the limit of {limits.max_bytes}")
    if not data.strip():
        return reject("file is empty")
    try:
        frame = _read(suffix, data)
    except UnicodeDecodeError as error:
        return reject(f"file is not UTF-8: {error.reason} at byte {error.start}")
    except Exception as error:  # pandas raises many types for unreadable input; all mean "not a table"
        return reject(f"file cannot be read as {suffix[1:]}: {type(error).__name__}: {error}")
    found = {str(column): _kind(frame[column]) for column in frame.columns}
    reasons: list[str] = []
    if limits.target not in found:
        reasons.append(f"target column {limits.target!r} is missing")
    if schema is not None:
        missing = sorted(set(schema) - set(found))
        extra = sorted(set(found) - set(schema))
        if missing:
            reasons.append(f"missing columns: {', '.join(missing)}")
        if extra:
            reasons.append(f"unexpected columns: {', '.join(extra)}")
        for column in sorted(set(schema) & set(found)):
            if schema[column] != found[column]:
                reasons.append(f"column {column} is {found[column]}, expected {schema[column]}")
    if len(frame) < limits.min_rows:
        reasons.append(f"file has {len(frame)} rows, fewer than the minimum of {limits.min_rows}")
    if limits.target in frame.columns and frame[limits.target].isna().any():
        reasons.append(
            f"target column {limits.target!r} has {int(frame[limits.target].isna().sum())} empty values"
        )
    return Validation(not reasons, tuple(reasons), sha, len(frame), found)


def _read(suffix: str, data: bytes):
    import pandas as pd

    if suffix == ".parquet":
        return pd.read_parquet(io.BytesIO(data))
    return pd.read_csv(io.StringIO(data.decode("utf-8")))


def _kind(series) -> str:
    from pandas.api.types import is_numeric_dtype

    return "number" if is_numeric_dtype(series) else "text"
