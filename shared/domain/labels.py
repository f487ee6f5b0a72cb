"""Late labels: files of correlation ids and true values, checked before the quality check trusts them.

A label file is CSV, Parquet or JSON Lines. Each row names a served row by `correlation_id` (the row id the
endpoint answered with: `<id>` for a request of one row, else `<id>:<n>`, see `capture.row_id`) and gives its
true value in a column named like the target (`MLOPS_TARGET_COLUMN`) or `label`. It is validated as landed data
is (`shared.domain.validation`: format, size, encoding, required columns, empty cells, the true value's type
against the task: numbers for regression, the known classes for classification when they are known), and one
more rule: an id given two different values in one file is ambiguous. Whether the ids name rows that were
served is not known here; the labels handler matches them against the captured traffic.

True values and predictions are compared in one canonical form (`true_value`): a float for regression, text
for classes, with numbers written one way (1, 1.0, "1" and "1.0" are all the class "1"), so a label file
written by a spreadsheet and a model answering in JSON agree on what a class is.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.domain.parquet import read_header
from shared.domain.validation import (
    JSON_LINES,
    MISSING_COLUMN,
    MISSING_TARGET,
    NULL_VALUES,
    SUPPORTED_FORMATS,
    ColumnSpec,
    Limits,
    Problem,
    Schema,
    category_text,
    validate,
)

ID_COLUMN = "correlation_id"
LABEL_COLUMN = "label"
FORMATS = (*SUPPORTED_FORMATS, JSON_LINES)

# Problem codes of label files beyond validation's (stable, for machines).
CONFLICTING_LABELS = "conflicting_labels"
UNMATCHED_IDS = "unmatched_ids"
_SHOWN = 5


@dataclass(frozen=True)
class LabelValidation:
    """`labels` maps each correlation id to its true value in canonical form (see `true_value`)."""

    ok: bool
    reasons: tuple[str, ...]
    problems: tuple[Problem, ...]
    sha256: str
    rows: int
    column: str
    labels: dict[str, Any] = field(default_factory=dict, repr=False)


def validate_labels(
    name: str, data: bytes, *, task: str, target: str, classes: Sequence[str] | None, max_bytes: int
) -> LabelValidation:
    """Check a label file; `classes` are the known classes of a classification task (None: not known)."""
    column = _value_column(name, data, target)
    schema = Schema(
        {ID_COLUMN: ColumnSpec("text", nullable=False), column: _value_spec(task, classes)},
        source="labels",
        formats=FORMATS,
        allow_extra_columns=True,
    )
    result = validate(name, data, schema, Limits(max_bytes, 1, column))
    problems = [
        _plainer(problem, target)
        for problem in result.problems
        if not (problem.code == MISSING_COLUMN and problem.column == column)  # said once, as MISSING_TARGET
    ]
    labels: dict[str, Any] = {}
    if result.ok:
        labels, missing, conflicts = _labels(result.table, column, task)
        if missing:
            problems.append(Problem(NULL_VALUES, ID_COLUMN, _without_id(missing)))
        if conflicts:
            shown = ", ".join(repr(c) for c in conflicts[:_SHOWN]) + (
                ", ..." if len(conflicts) > _SHOWN else ""
            )
            message = f"{len(conflicts)} correlation ids have different true values in this file: {shown}"
            problems.append(Problem(CONFLICTING_LABELS, ID_COLUMN, message))
    return LabelValidation(
        ok=not problems,
        reasons=tuple(p.message for p in problems),
        problems=tuple(problems),
        sha256=result.sha256,
        rows=result.rows,
        column=column,
        labels=labels if not problems else {},
    )


def true_value(task: str, value: Any) -> Any:
    """The canonical form of a true value or a prediction: a finite float for regression (None if it is not
    one), class text otherwise (None for an empty value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if task == "regression":
        if isinstance(value, bool) or not (isinstance(value, int | float) or hasattr(value, "item")):
            return None
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return category_text(number) if math.isfinite(number) else value
    return category_text(value)


def class_order(value: str) -> tuple[int, float, str]:
    """Sort key of class texts as the training job sorts its classes: numbers by value, then text. In a
    binary task the last class is the positive one, so both must agree on which that is."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def _value_column(name: str, data: bytes, target: str) -> str:
    """The target's column if the file has one, else `label` if it has that; the target's name when neither
    (validation then reports it missing)."""
    header = _header(name, data)
    if target not in header and LABEL_COLUMN in header:
        return LABEL_COLUMN
    return target


def _header(name: str, data: bytes) -> list[str]:
    """The column names, read cheaply (a line, or Parquet's footer); [] when they cannot be (validation says
    why)."""
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    try:
        if suffix == ".parquet":
            return read_header(data)
        first = data[: 1 << 16].decode("utf-8-sig", errors="replace").lstrip().split("\n", 1)[0]
        if suffix == JSON_LINES:
            row = json.loads(first)
            return [str(key) for key in row] if isinstance(row, dict) else []
        return next(csv.reader([first]), [])
    except Exception:  # any unreadable header: validation reports the file itself
        return []


def _value_spec(task: str, classes: Sequence[str] | None) -> ColumnSpec:
    if task == "regression":
        return ColumnSpec("number")
    if classes:
        return ColumnSpec("category", categories=tuple(sorted(category_text(c) for c in classes)))
    return ColumnSpec("text")


def _labels(table: Any, column: str, task: str) -> tuple[dict[str, Any], int, list[str]]:
    """The labels by id, the count of rows whose id is blank, and the ids given two different values."""
    labels: dict[str, Any] = {}
    conflicts: set[str] = set()
    missing = 0
    for raw_id, raw_value in zip(table[ID_COLUMN].tolist(), table[column].tolist(), strict=True):
        row_id = (raw_id if isinstance(raw_id, str) else category_text(raw_id)).strip()
        if not row_id:
            missing += 1
            continue
        value = true_value(task, raw_value)
        if row_id in labels and labels[row_id] != value:
            conflicts.add(row_id)
        labels[row_id] = value
    return labels, missing, sorted(conflicts)


def _plainer(problem: Problem, target: str) -> Problem:
    """Validation's words for data files, said for label files."""
    if problem.code == MISSING_TARGET:
        message = f"no column of true values: expected {target!r} (the target column) or {LABEL_COLUMN!r}"
        return replace(problem, message=message)
    if problem.code == MISSING_COLUMN and problem.column == ID_COLUMN:
        message = f"no {ID_COLUMN} column: each row must name the row id the endpoint answered with"
        return replace(problem, message=message)
    if problem.code == NULL_VALUES and problem.column == ID_COLUMN:
        count = re.search(r"has (\d+) empty", problem.message)
        return replace(problem, message=_without_id(int(count[1]) if count else 0))
    return problem


def _without_id(rows: int) -> str:
    return f"{rows or 'some'} row{'' if rows == 1 else 's'} without a correlation id"
