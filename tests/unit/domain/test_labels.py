"""Label files: correlation ids and true values in CSV, Parquet or JSON Lines, validated as landed data is, with
reasons a person can act on."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from shared.domain.labels import (
    CONFLICTING_LABELS,
    LabelValidation,
    class_order,
    true_value,
    validate_labels,
)


def check(
    data: bytes, name: str = "labels.csv", task: str = "regression", classes: list[str] | None = None
) -> LabelValidation:
    return validate_labels(name, data, task=task, target="target", classes=classes, max_bytes=10_000)


def codes(result: LabelValidation) -> list[tuple[str, str | None]]:
    return [(p.code, p.column) for p in result.problems]


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_a_csv_of_ids_and_target_values_is_read_into_canonical_labels() -> None:
    result = check(b"correlation_id,target,note\nreq-1:0,1.5,x\nreq-1:1,2,y\nreq-2,-3e2,\n")
    assert result.ok and result.reasons == ()
    assert result.column == "target" and result.rows == 3
    assert result.labels == {"req-1:0": 1.5, "req-1:1": 2.0, "req-2": -300.0}


def test_the_true_value_may_sit_in_a_column_called_label() -> None:
    result = check(b"correlation_id,label\nreq-1,4\n")
    assert result.ok and result.column == "label" and result.labels == {"req-1": 4.0}


def test_json_lines_and_parquet_files_are_read_too_and_numeric_ids_become_text() -> None:
    lines = b'{"correlation_id": "a", "target": 1}\n\n{"correlation_id": 7, "target": 2.5}\n'
    assert check(lines, "labels.jsonl").labels == {"a": 1.0, "7": 2.5}
    frame = pd.DataFrame({"correlation_id": [1, 2], "label": [0.5, 1.5]})
    result = check(parquet(frame), "labels.parquet")
    assert result.ok and result.labels == {"1": 0.5, "2": 1.5}


def test_a_file_without_correlation_ids_is_rejected_saying_what_each_row_needs() -> None:
    result = check(b"id,target\nreq-1,1\n")
    assert codes(result) == [("missing_column", "correlation_id")]
    assert "row id the endpoint answered with" in result.reasons[0]
    assert result.labels == {}


def test_a_file_without_a_column_of_true_values_names_both_names_it_could_use() -> None:
    result = check(b"correlation_id,truth\nreq-1,1\n")
    assert codes(result) == [("missing_target", "target")]
    assert result.reasons == ("no column of true values: expected 'target' (the target column) or 'label'",)


def test_rows_without_an_id_are_counted() -> None:
    result = check(b"correlation_id,target\n,1\nreq-2,2\n,3\n")
    assert codes(result) == [("null_values", "correlation_id")]
    assert result.reasons == ("2 rows without a correlation id",)
    blank = check(b'{"correlation_id": " ", "target": 1}\n', "labels.jsonl")
    assert blank.reasons == ("1 row without a correlation id",)


def test_a_regression_label_that_is_not_a_number_is_a_wrong_type() -> None:
    result = check(b"correlation_id,target\nreq-1,1.5\nreq-2,high\n")
    assert codes(result) == [("wrong_type", "target")]
    assert result.reasons == ("column target is text, expected number",)
    assert codes(check(b"correlation_id,target\nreq-1,inf\n")) == [("non_finite", "target")]
    assert codes(check(b"correlation_id,target\nreq-1,\nreq-2,1\n")) == [("null_target", "target")]


def test_a_class_outside_the_known_classes_is_rejected_and_unknown_classes_are_not_guessed() -> None:
    data = b"correlation_id,target\nreq-1,yes\nreq-2,maybe\n"
    result = check(data, task="binary", classes=["no", "yes"])
    assert codes(result) == [("unknown_category", "target")]
    assert "'maybe'" in result.reasons[0]
    assert check(data, task="binary", classes=None).labels == {"req-1": "yes", "req-2": "maybe"}


def test_one_id_with_two_values_is_ambiguous_but_a_repeated_value_is_not() -> None:
    repeated = check(b"correlation_id,target\nreq-1,1\nreq-1,1.0\n")
    assert repeated.ok and repeated.labels == {"req-1": 1.0}
    result = check(b"correlation_id,target\nreq-1,1\nreq-1,2\nreq-2,3\n")
    assert codes(result) == [(CONFLICTING_LABELS, "correlation_id")]
    assert result.reasons == ("1 correlation ids have different true values in this file: 'req-1'",)
    assert result.labels == {}


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("labels.txt", b"correlation_id,target\nreq-1,1\n", "unsupported_format"),
        ("labels.csv", b"", "empty_file"),
        ("labels.csv", b"correlation_id,target\nreq-1,\xff\n", "bad_encoding"),
        ("labels.jsonl", b'{"correlation_id": "a", "target": 1}\n[1, 2]\n', "unreadable"),
        ("labels.jsonl", b'{"correlation_id": "a", "target": 1}\nnot json\n', "unreadable"),
        ("labels.parquet", b"not parquet", "unreadable"),
        ("labels.csv", b"correlation_id,target\n", "too_few_rows"),
        ("labels.csv", b"correlation_id,target\n" + b"r,1\n" * 3000, "file_too_large"),
    ],
)
def test_a_malformed_file_gets_one_clear_problem_never_an_exception(
    name: str, data: bytes, code: str
) -> None:
    result = check(data, name)
    assert not result.ok and [c for c, _ in codes(result)] == [code]
    assert result.reasons and all(isinstance(r, str) for r in result.reasons)


def test_json_lines_problems_name_the_line() -> None:
    result = check(b'{"correlation_id": "a", "target": 1}\nnot json\n', "labels.jsonl")
    assert result.reasons == (
        "file cannot be read as jsonl: ValueError: line 2 is not JSON: Expecting value",
    )


def test_landed_data_files_still_may_not_be_json_lines() -> None:
    from shared.domain.validation import Limits, validate

    result = validate("rows.jsonl", b'{"x": 1, "target": 2}\n', None, Limits(10_000, 1, "target"))
    assert [p.code for p in result.problems] == ["unsupported_format"]
    assert result.reasons == ("format .jsonl is not one of .csv, .parquet",)


@pytest.mark.parametrize(
    ("task", "value", "expected"),
    [
        ("regression", 3, 3.0),
        ("regression", "3", None),
        ("regression", True, None),
        ("regression", float("inf"), None),
        ("regression", None, None),
        ("binary", 1, "1"),
        ("binary", 1.0, "1"),
        ("binary", "1.0", "1"),
        ("binary", " yes", " yes"),
        ("binary", float("nan"), None),
        ("multiclass", True, "True"),
    ],
)
def test_true_values_and_predictions_share_one_canonical_form(
    task: str, value: object, expected: object
) -> None:
    assert true_value(task, value) == expected


def test_classes_sort_as_the_training_job_sorts_them() -> None:
    assert sorted(["10", "2", "b", "a"], key=class_order) == ["2", "10", "a", "b"]
