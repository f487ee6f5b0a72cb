"""Checks a landed file before anything trains on it: format, size, encoding, columns, types, nulls, ranges,
categories, rows.

The schema is declared (`MLOPS_SCHEMA`) or learned from the first accepted file and then frozen. A learned
schema must not reject normal new data, so it records observed numeric ranges without enforcing them, learns
every numeric column as `number` (a later file may carry decimals), and learns categories only for text columns
with few distinct values, each seen several times (so the first file has probably shown them all). It does
learn nullability: a column that had no empty cell must not start having them unnoticed.

Every failure is a `Problem` (code, column, message) for machines, and a line in `reasons` for people.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.domain.data_schema import (
    JSON_LINES,
    MAX_LEARNED_CATEGORIES,
    MIN_ROWS_PER_LEARNED_CATEGORY,
    NUMERIC_TYPES,
    SUPPORTED_FORMATS,
    TYPES,
    ColumnSpec,
    Schema,
    SchemaError,
    as_schema,
    category_text,
)
from shared.domain.parquet import read_frame

__all__ = [
    "JSON_LINES",
    "MAX_LEARNED_CATEGORIES",
    "MIN_ROWS_PER_LEARNED_CATEGORY",
    "NUMERIC_TYPES",
    "SUPPORTED_FORMATS",
    "TYPES",
    "ColumnSpec",
    "Limits",
    "Problem",
    "Schema",
    "SchemaError",
    "Validation",
    "as_schema",
    "category_text",
    "learn_schema",
    "validate",
]
_SHOWN_VALUES = 5


# Problem codes: stable, for machines (quarantine reason files, audit entries, dashboards).
UNSUPPORTED_FORMAT = "unsupported_format"
FILE_TOO_LARGE = "file_too_large"
EMPTY_FILE = "empty_file"
BAD_ENCODING = "bad_encoding"
UNREADABLE = "unreadable"
DUPLICATE_COLUMN = "duplicate_column"
MISSING_TARGET = "missing_target"
MISSING_COLUMN = "missing_column"
UNEXPECTED_COLUMN = "unexpected_column"
WRONG_TYPE = "wrong_type"
NULL_VALUES = "null_values"
NON_FINITE = "non_finite"
BELOW_MINIMUM = "below_minimum"
ABOVE_MAXIMUM = "above_maximum"
UNKNOWN_CATEGORY = "unknown_category"
TOO_FEW_ROWS = "too_few_rows"
NULL_TARGET = "null_target"


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    min_rows: int
    target: str


@dataclass(frozen=True)
class Problem:
    code: str
    column: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "column": self.column, "message": self.message}


@dataclass(frozen=True)
class Validation:
    """`reasons` say it for people (one line may sum up several problems, e.g. all missing columns);
    `problems` say it for machines, one per code and column. `schema` is column -> "number" | "text";
    `observed` is what this file holds, in the learned form: the schema to freeze if it is the first."""

    ok: bool
    reasons: tuple[str, ...]
    sha256: str
    rows: int = 0
    schema: dict[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    observed: Schema | None = None
    format: str = ""
    encoding: str | None = None
    table: Any = field(default=None, repr=False, compare=False)  # the frame read, for callers that use rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reasons": list(self.reasons),
            "problems": [p.as_dict() for p in self.problems],
            "sha256": self.sha256,
            "rows": self.rows,
        }


class _Findings:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.reasons: list[str] = []
        self.format = ""

    def add(self, code: str, column: str | None, message: str) -> None:
        self.problems.append(Problem(code, column, message))
        self.reasons.append(message)

    def add_columns(self, code: str, columns: list[str], summary: str, each: str) -> None:
        if columns:
            self.problems.extend(Problem(code, c, each.format(column=c)) for c in columns)
            self.reasons.append(f"{summary}: {', '.join(columns)}")


def validate(name: str, data: bytes, schema: Schema | Mapping[str, Any] | None, limits: Limits) -> Validation:
    """Validate `data` against `schema` (a `Schema`, its dict form, or the older column -> kind mapping);
    None to learn: then only the file's own soundness is checked, and `observed` is what to freeze."""
    sha = hashlib.sha256(data).hexdigest()
    expected = None if schema is None else as_schema(schema)
    findings = _Findings()

    def rejected(rows: int = 0, format_: str = "") -> Validation:
        reasons, problems = tuple(findings.reasons), tuple(findings.problems)
        return Validation(False, reasons, sha, rows, problems=problems, format=format_)

    suffix = check_format(name, expected, findings)
    if suffix is None:
        return rejected(format_=findings.format)
    format_ = suffix[1:]
    if len(data) > limits.max_bytes:
        findings.add(
            FILE_TOO_LARGE, None, f"file has {len(data)} bytes, more than the limit of {limits.max_bytes}"
        )
        return rejected(format_=format_)
    if not data.strip():
        findings.add(EMPTY_FILE, None, "file is empty")
        return rejected(format_=format_)
    encoding = (expected.encoding if expected else "utf-8") if suffix in (".csv", JSON_LINES) else None
    try:
        frame, header = _read(suffix, data, encoding, _text_columns(expected))
    except UnicodeDecodeError as error:
        label = "UTF-8" if _is_utf8(encoding) else encoding
        findings.add(BAD_ENCODING, None, f"file is not {label}: {error.reason} at byte {error.start}")
        return rejected(format_=format_)
    except Exception as error:  # pandas raises many types for unreadable input; all mean "not a table"
        findings.add(UNREADABLE, None, f"file cannot be read as {format_}: {type(error).__name__}: {error}")
        return rejected(format_=format_)
    frame.columns = [str(column) for column in frame.columns]
    rows = len(frame)

    duplicates = sorted({c for c in header if header.count(c) > 1})
    findings.add_columns(
        DUPLICATE_COLUMN, duplicates, "duplicate columns", "column {column} appears more than once"
    )
    if limits.target not in frame.columns:
        findings.add(MISSING_TARGET, limits.target, f"target column {limits.target!r} is missing")
    if expected is not None:
        missing = sorted(set(expected.columns) - set(frame.columns))
        findings.add_columns(MISSING_COLUMN, missing, "missing columns", "column {column} is missing")
        if not expected.allow_extra_columns:
            renamed = {c for c in frame.columns if c not in header}  # pandas' names for the duplicates
            extra = sorted(set(frame.columns) - set(expected.columns) - renamed)
            findings.add_columns(
                UNEXPECTED_COLUMN, extra, "unexpected columns", "column {column} is not in the schema"
            )
        for column in sorted(set(expected.columns) & set(frame.columns)):
            _check_column(column, frame[column], expected.columns[column], column == limits.target, findings)
    for column in frame.columns:
        if expected is None or column not in expected.columns:
            _check_finite(column, frame[column], findings)
    if rows < limits.min_rows:
        findings.add(TOO_FEW_ROWS, None, f"file has {rows} rows, fewer than the minimum of {limits.min_rows}")
    if limits.target in frame.columns and frame[limits.target].isna().any():
        empty = int(frame[limits.target].isna().sum())
        findings.add(NULL_TARGET, limits.target, f"target column {limits.target!r} has {empty} empty values")

    kinds = {column: _kind(frame[column]) for column in frame.columns}
    observed = _observe(frame, encoding)
    return Validation(
        not findings.problems,
        tuple(findings.reasons),
        sha,
        rows,
        kinds,
        tuple(findings.problems),
        observed,
        format_,
        encoding,
        frame,
    )


def check_format(name: str, expected: Schema | None, findings: _Findings) -> str | None:
    """The file's suffix (".csv"), or None after recording why its format is not accepted."""
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    lines = expected is not None and JSON_LINES in expected.formats
    readable = (*SUPPORTED_FORMATS, JSON_LINES) if lines else SUPPORTED_FORMATS
    if suffix not in readable:
        findings.add(
            UNSUPPORTED_FORMAT, None, f"format {suffix or '(none)'} is not one of {', '.join(readable)}"
        )
        return None
    if expected is not None and suffix not in expected.formats:
        findings.format = suffix[1:]
        findings.add(
            UNSUPPORTED_FORMAT,
            None,
            f"format {suffix} is not one of the schema's {', '.join(expected.formats)}",
        )
        return None
    return suffix


def learn_schema(frame: Any, encoding: str | None = "utf-8") -> Schema:
    """The learned schema of a data frame (see the module's docstring for what is learned, and why)."""
    return _observe(frame, encoding)


def _check_column(column: str, values: Any, spec: ColumnSpec, is_target: bool, findings: _Findings) -> None:
    present = values.dropna()
    if not spec.nullable and not is_target and len(present) < len(values):
        findings.add(
            NULL_VALUES,
            column,
            f"column {column} has {len(values) - len(present)} empty values but is not nullable",
        )
    if present.empty:
        return  # an empty column has no type to get wrong
    if spec.type in NUMERIC_TYPES:
        if _kind(values) != "number":
            findings.add(WRONG_TYPE, column, f"column {column} is text, expected {spec.type}")
            return
        numbers = present.astype("float64")
        if not _check_finite(column, numbers, findings):
            return
        if spec.type == "integer":
            fractional = int((numbers != numbers.round()).sum())
            if fractional:
                findings.add(
                    WRONG_TYPE,
                    column,
                    f"column {column} has {fractional} non-integer values, expected integer",
                )
        if spec.min is not None and (numbers < spec.min).any():
            count, lowest = int((numbers < spec.min).sum()), float(numbers.min())
            findings.add(
                BELOW_MINIMUM,
                column,
                f"column {column} has {count} values below the minimum {spec.min:g} (lowest {lowest:g})",
            )
        if spec.max is not None and (numbers > spec.max).any():
            count, highest = int((numbers > spec.max).sum()), float(numbers.max())
            findings.add(
                ABOVE_MAXIMUM,
                column,
                f"column {column} has {count} values above the maximum {spec.max:g} (highest {highest:g})",
            )
    elif spec.type == "category" and spec.categories is not None:
        allowed = set(spec.categories)
        text = [category_text(v) for v in present.tolist()]
        unknown = sorted(set(text) - allowed)
        if unknown:
            count = sum(value not in allowed for value in text)
            shown = ", ".join(repr(v) for v in unknown[:_SHOWN_VALUES]) + (
                ", ..." if len(unknown) > _SHOWN_VALUES else ""
            )
            findings.add(
                UNKNOWN_CATEGORY,
                column,
                f"column {column} has {count} values outside its categories: {shown}",
            )


def _check_finite(column: str, values: Any, findings: _Findings) -> bool:
    """Infinite numbers pass a type check but break every estimator; say so at the door."""
    if _kind(values) != "number" or values.dtype == bool:
        return True
    import numpy as np

    infinite = int(np.isinf(values.dropna().to_numpy(dtype="float64")).sum())
    if infinite:
        findings.add(NON_FINITE, column, f"column {column} has {infinite} infinite values")
    return not infinite


def _observe(frame: Any, encoding: str | None) -> Schema:
    import numpy as np

    columns = {}
    for column in frame.columns:
        values = frame[column]
        present = values.dropna()
        nullable = len(present) < len(values)
        if present.empty:
            columns[str(column)] = ColumnSpec("text", nullable=True)  # nothing seen: constrain nothing
        elif _kind(values) == "number":
            numbers = present.to_numpy(dtype="float64")
            finite = numbers[~np.isinf(numbers)]
            low, high = (float(finite.min()), float(finite.max())) if len(finite) else (None, None)
            columns[str(column)] = ColumnSpec("number", nullable, observed_min=low, observed_max=high)
        else:
            seen = sorted({category_text(v) for v in present.tolist()})
            if len(seen) <= MAX_LEARNED_CATEGORIES and len(present) >= MIN_ROWS_PER_LEARNED_CATEGORY * len(
                seen
            ):
                columns[str(column)] = ColumnSpec("category", nullable, categories=tuple(seen))
            else:
                columns[str(column)] = ColumnSpec("text", nullable)
    return Schema(columns, source="learned", encoding=encoding or "utf-8")


def _read(suffix: str, data: bytes, encoding: str | None, text_columns: list[str]) -> tuple[Any, list[str]]:
    """The table and its header as written (pandas renames a repeated column `a` to `a.1`)."""
    import pandas as pd

    if suffix == ".parquet":
        frame = read_frame(data)
        return frame, list(frame.columns)
    # utf-8-sig: a byte-order mark (Excel writes one) must not become part of the first column's name.
    text = data.decode("utf-8-sig" if _is_utf8(encoding) else encoding or "utf-8")
    if suffix == JSON_LINES:
        return _json_lines(text, text_columns)
    header = next(csv.reader(io.StringIO(text)), [])
    # Declared text and category columns stay strings: "007" is not 7.
    frame = pd.read_csv(io.StringIO(text), dtype=dict.fromkeys(text_columns, str) or None)
    return frame, header


def _json_lines(text: str, text_columns: list[str]) -> tuple[Any, list[str]]:
    """One JSON object per line; a declared text column keeps its values as text (an id 7 is "7")."""
    import pandas as pd

    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"line {number} is not JSON: {error.msg}") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {number} is not a JSON object")
        for column in text_columns:
            if row.get(column) is not None and not isinstance(row[column], str):
                row[column] = category_text(row[column])
        rows.append(row)
    header = list(dict.fromkeys(str(key) for row in rows for key in row))
    return pd.DataFrame.from_records(rows, columns=header), header


def _text_columns(schema: Schema | None) -> list[str]:
    if schema is None:
        return []
    return [name for name, spec in schema.columns.items() if spec.type in ("text", "category")]


def _kind(series: Any) -> str:
    from pandas.api.types import is_numeric_dtype

    return "number" if is_numeric_dtype(series) else "text"


def _is_utf8(encoding: str | None) -> bool:
    return encoding is not None and codecs.lookup(encoding).name == "utf-8"
