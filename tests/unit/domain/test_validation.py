"""Checks on a landed file before anything trains on it; every rejection says why in words."""

from __future__ import annotations

import hashlib

import pytest

from shared.domain.validation import Limits, Schema, validate

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
        "problems": [
            {
                "code": "too_few_rows",
                "column": None,
                "message": "file has 1 rows, fewer than the minimum of 10",
            }
        ],
        "sha256": result.sha256,
        "rows": 1,
    }


# --- machine-readable problems --------------------------------------------------------------------------------


def codes(result) -> list[tuple[str, str | None]]:
    return [(p.code, p.column) for p in result.problems]


def test_every_problem_has_a_code_and_column_and_lists_group_into_one_reason() -> None:
    result = validate("messy.csv", csv(rows=2, header="age,town", row="{i},Oslo"), SCHEMA, LIMITS)

    assert codes(result) == [
        ("missing_target", "target"),
        ("missing_column", "city"),
        ("missing_column", "target"),
        ("unexpected_column", "town"),
        ("too_few_rows", None),
    ]
    assert [p.message for p in result.problems][1:3] == ["column city is missing", "column target is missing"]
    assert len(result.reasons) == 4  # one line for both missing columns, as before


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.txt", csv(), [("unsupported_format", None)]),
        ("empty.csv", b" \n", [("empty_file", None)]),
        ("latin1.csv", "age,city,target\n1,Tromsø,1\n".encode("latin-1"), [("bad_encoding", None)]),
        ("broken.parquet", b"PAR1 nope", [("unreadable", None)]),
        ("typed.csv", csv(row="old,Oslo,{t}"), [("wrong_type", "age")]),
        ("null_target.csv", csv() + b"33,Oslo,\n", [("null_target", "target")]),
        ("inf.csv", csv() + b"33,Oslo,inf\n", [("non_finite", "target")]),
    ],
)
def test_each_kind_of_failure_has_its_code(name: str, data: bytes, expected: list) -> None:
    assert codes(validate(name, data, SCHEMA, LIMITS)) == expected


def test_a_file_over_the_size_limit_has_a_code() -> None:
    result = validate("big.csv", csv(rows=100), None, Limits(max_bytes=100, min_rows=1, target="target"))

    assert codes(result) == [("file_too_large", None)]


def test_a_repeated_column_name_is_reported_as_such_not_as_a_pandas_rename() -> None:
    result = validate("dup.csv", csv(header="age,city,target,age", row="{i},Oslo,{t},1"), SCHEMA, LIMITS)

    assert codes(result) == [("duplicate_column", "age")]
    assert result.reasons == ("duplicate columns: age",)


# --- a declared schema ----------------------------------------------------------------------------------------

DECLARED = Schema.from_dict(
    {
        "columns": {
            "age": {"type": "integer", "nullable": False, "min": 0, "max": 120},
            "city": {"type": "category", "categories": ["Oslo", "Bergen"]},
            "zip": {"type": "text"},
            "target": "number",
        }
    }
)


def people(rows: list[str]) -> bytes:
    return ("age,city,zip,target\n" + "\n".join(rows * 4) + "\n").encode()


def test_a_file_meeting_the_declared_schema_is_accepted() -> None:
    result = validate(
        "ok.csv", people(["30,Oslo,0150,1.5", "41,Bergen,5003,2", "7,,0150,3"]), DECLARED, LIMITS
    )

    assert result.ok, result.reasons
    assert result.schema == {"age": "number", "city": "text", "zip": "text", "target": "number"}


def test_declared_constraints_are_enforced_with_their_numbers() -> None:
    data = people(["-1,Oslo,0150,1", "130,Tromsø,0150,1", ",Oslo,0150,1", "30.5,Oslo,0150,1"])

    result = validate("bad.csv", data, DECLARED, LIMITS)

    assert codes(result) == [
        ("null_values", "age"),
        ("wrong_type", "age"),
        ("below_minimum", "age"),
        ("above_maximum", "age"),
        ("unknown_category", "city"),
    ]
    assert result.reasons == (
        "column age has 4 empty values but is not nullable",
        "column age has 4 non-integer values, expected integer",
        "column age has 4 values below the minimum 0 (lowest -1)",
        "column age has 4 values above the maximum 120 (highest 130)",
        "column city has 4 values outside its categories: 'Tromsø'",
    )


def test_declared_text_keeps_leading_zeros_and_accepts_digits() -> None:
    data = people(["30,Oslo,0150,1", "41,Bergen,5003,2", "9,Oslo,0001,3"])

    result = validate("zip.csv", data, DECLARED, LIMITS)

    assert result.ok, result.reasons


def test_integer_columns_accept_whole_floats_from_a_column_with_gaps() -> None:
    schema = Schema.from_dict({"columns": {"n": "integer", "target": "number"}})
    data = b"n,target\n" + b"".join(f"{'' if i % 3 else i},{i}\n".encode() for i in range(12))

    assert validate("gaps.csv", data, schema, LIMITS).ok


def test_declared_formats_and_encoding_are_enforced() -> None:
    csv_only = Schema.from_dict({"columns": {"age": "number", "target": "number"}, "formats": ["csv"]})
    latin = Schema.from_dict({"columns": {"city": "text", "target": "number"}, "encoding": "latin-1"})
    import pandas as pd

    parquet = pd.DataFrame({"age": range(12), "target": [1.0] * 12}).to_parquet()
    text = "city,target\n" + "".join(f"Tromsø,{i}\n" for i in range(12))

    assert codes(validate("a.parquet", parquet, csv_only, LIMITS)) == [("unsupported_format", None)]
    assert validate("b.csv", text.encode("latin-1"), latin, LIMITS).ok
    assert codes(validate("c.csv", text.encode("utf-8"), latin, LIMITS)) == []  # latin-1 decodes any bytes
    assert codes(validate("d.csv", text.encode("latin-1"), None, LIMITS)) == [("bad_encoding", None)]


def test_extra_columns_can_be_allowed() -> None:
    schema = Schema.from_dict({"columns": {"age": "number", "target": "number"}, "allow_extra_columns": True})

    assert validate("extra.csv", csv(), schema, LIMITS).ok


def test_a_utf8_byte_order_mark_does_not_rename_the_first_column() -> None:
    result = validate("bom.csv", b"\xef\xbb\xbf" + csv(), SCHEMA, LIMITS)

    assert result.ok, result.reasons


def test_the_first_schemas_plain_mapping_still_validates_types() -> None:
    result = validate(
        "typed.csv", csv(row="old,Oslo,{t}"), {"age": "number", "city": "text", "target": "number"}, LIMITS
    )

    assert result.reasons == ("column age is text, expected number",)


# --- a learned schema -----------------------------------------------------------------------------------------


def test_the_learned_schema_has_types_nullability_ranges_and_small_category_sets() -> None:
    rows = [
        f"{20 + i},{'Oslo' if i % 2 else 'Bergen'},{'' if i == 3 else i},name{i},{i * 1.5}" for i in range(12)
    ]
    data = ("age,city,score,name,target\n" + "\n".join(rows) + "\n").encode()

    learned = validate("first.csv", data, None, LIMITS).observed

    assert learned is not None and learned.source == "learned"
    assert learned.as_dict()["columns"] == {
        "age": {"type": "number", "nullable": False, "observed_min": 20.0, "observed_max": 31.0},
        "city": {"type": "category", "nullable": False, "categories": ["Bergen", "Oslo"]},
        "score": {"type": "number", "nullable": True, "observed_min": 0.0, "observed_max": 11.0},
        "name": {"type": "text", "nullable": False},
        "target": {"type": "number", "nullable": False, "observed_min": 0.0, "observed_max": 16.5},
    }
    assert Schema.from_dict(learned.as_dict()) == learned  # what is frozen in state reads back the same


def test_a_learned_schema_does_not_enforce_observed_ranges_but_does_nulls_and_categories() -> None:
    learned = validate("first.csv", csv(row="{i},Oslo,{t}"), None, LIMITS).observed
    frozen = learned.as_dict()

    wider = csv(row="{i}00,Oslo,-{t}")  # ages 2000+ and negative targets: outside what was seen, still fine
    gaps = csv() + b",Oslo,1\n"
    elsewhere = csv(row="{i},Bergen,{t}")

    assert validate("wider.csv", wider, frozen, LIMITS).ok
    assert codes(validate("gaps.csv", gaps, frozen, LIMITS)) == [("null_values", "age")]
    assert codes(validate("elsewhere.csv", elsewhere, frozen, LIMITS)) == [("unknown_category", "city")]


def test_a_passing_file_reports_its_format_encoding_hash_and_rows() -> None:
    data = csv()

    result = validate("batch.csv", data, None, LIMITS)

    assert (result.ok, result.format, result.encoding, result.rows) == (True, "csv", "utf-8", 12)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
