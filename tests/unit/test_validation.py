"""Checks on a landed file before anything trains on it; every rejection says why in words."""

from __future__ import annotations

import hashlib

import pytest

from shared.validation import Limits, validate

LIMITS = Limits(max_bytes=1_000_000, min_rows=10, target="target")
SCHEMA = {"age": "number", "city": "text", "target": "number"}


def csv(rows: int = 12, header: str = "age,city,target", row: str = "{i},Oslo,{t}") -> bytes:
    lines = [header, *(row.format(i=20 + i, t=i * 1.5) for i in range(rows))]
    return ("\n".join(lines) + "\n").encode()


def test_a_good_csv_is_accepted_with_its_hash_rows_and_schema() -> None:
    data = csv()

    result = validate("batch.csv", data, None, LIMITS)

    assert result.ok, result.reasons
    assert result.reasons == ()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.rows == 12
    assert result.schema == SCHEMA


def test_a_good_csv_matching_the_learned_schema_is_accepted() -> None:
    assert validate("batch.CSV", csv(), SCHEMA, LIMITS).ok


def test_a_parquet_file_is_accepted() -> None:
    import pandas as pd

    frame = pd.DataFrame({"age": range(12), "city": ["Oslo"] * 12, "target": [1.0] * 12})
    data = frame.to_parquet()

    result = validate("batch.parquet", data, SCHEMA, LIMITS)

    assert result.ok, result.reasons
    assert result.rows == 12


def test_the_hash_is_reported_for_rejected_files_too() -> None:
    data = b"hello"

    assert validate("notes.txt", data, None, LIMITS).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("name", "data", "schema", "expected"),
    [
        ("notes.txt", csv(), None, ["format .txt is not one of .csv, .parquet"]),
        ("README", csv(), None, ["format (none) is not one of .csv, .parquet"]),
        ("empty.csv", b" \n", None, ["file is empty"]),
        (
            "no_target.csv",
            csv(header="age,city,label"),
            None,
            ["target column 'target' is missing"],
        ),
        (
            "missing.csv",
            csv(header="age,target", row="{i},{t}"),
            SCHEMA,
            ["missing columns: city"],
        ),
        (
            "extra.csv",
            csv(header="age,city,target,score", row="{i},Oslo,{t},7"),
            SCHEMA,
            ["unexpected columns: score"],
        ),
        (
            "typed.csv",
            csv(header="age,city,target", row="old,Oslo,{t}"),
            SCHEMA,
            ["column age is text, expected number"],
        ),
        ("short.csv", csv(rows=3), SCHEMA, ["file has 3 rows, fewer than the minimum of 10"]),
        (
            "null_target.csv",
            csv() + b"33,Oslo,\n34,Bergen,\n",
            SCHEMA,
            ["target column 'target' has 2 empty values"],
        ),
    ],
)
def test_bad_files_are_rejected_with_readable_reasons(
    name: str, data: bytes, schema: dict[str, str] | None, expected: list[str]
) -> None:
    result = validate(name, data, schema, LIMITS)

    assert not result.ok
    assert list(result.reasons) == expected


def test_a_file_over_the_size_limit_is_rejected_before_it_is_read() -> None:
    data = csv(rows=100)

    result = validate("big.csv", data, None, Limits(max_bytes=100, min_rows=1, target="target"))

    assert not result.ok
    assert result.reasons == (f"file has {len(data)} bytes, more than the limit of 100",)


def test_a_file_that_is_not_utf8_is_rejected() -> None:
    data = "age,city,target\n" + "".join(f"{i},Tromsø,{i}\n" for i in range(12))

    result = validate("latin1.csv", data.encode("latin-1"), None, LIMITS)

    assert not result.ok
    [reason] = result.reasons
    assert reason.startswith("file is not UTF-8: invalid")
    assert "at byte" in reason


def test_a_file_that_is_not_a_table_is_rejected() -> None:
    result = validate("broken.parquet", b"PAR1 this is not parquet", None, LIMITS)

    assert not result.ok
    assert result.reasons[0].startswith("file cannot be read as parquet:")


def test_every_problem_is_reported_at_once() -> None:
    result = validate("messy.csv", csv(rows=2, header="age,town", row="{i},Oslo"), SCHEMA, LIMITS)

    assert not result.ok
    assert list(result.reasons) == [
        "target column 'target' is missing",
        "missing columns: city, target",
        "unexpected columns: town",
        "file has 2 rows, fewer than the minimum of 10",
    ]


def test_integers_and_decimals_are_the_same_kind() -> None:
    result = validate("ints.csv", csv(row="{i},Oslo,1"), SCHEMA, LIMITS)

    assert result.ok, result.reasons


def test_as_dict_is_what_the_quarantine_reason_records() -> None:
    result = validate("short.csv", csv(rows=1), None, LIMITS)

    assert result.as_dict() == {
        "ok": False,
        "reasons": ["file has 1 rows, fewer than the minimum of 10"],
        "sha256": result.sha256,
        "rows": 1,
    }
