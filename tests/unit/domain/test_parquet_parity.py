"""The app reads Parquet with fastparquet; the training job with pandas and pyarrow. Over a corpus of files written
by pyarrow and pandas, the app's reader gives the frame pyarrow gives (dtypes included), or refuses the file with
its reason; validation then reaches the verdict and the findings it reaches on pyarrow's frame."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import struct
import time

import fastparquet
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.domain import validation
from shared.domain.chunked_validation import validate_chunks
from shared.domain.labels import validate_labels
from shared.domain.parquet import ParquetRejected, ParquetTable, read_frame, read_header
from shared.domain.validation import UNREADABLE, Limits, validate

LIMITS = Limits(max_bytes=10_000_000, min_rows=1, target="a")


def _table(table: pa.Table, **options: object) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def _frame(frame: pd.DataFrame, **options: object) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", **options)
    return buffer.getvalue()


def _accepted() -> dict[str, bytes]:
    days = [dt.date(2024, 1, 1), None]
    files = {
        "ints": _frame(pd.DataFrame({"a": [1, 2, 3], "y": [0, 1, 0]})),
        "ints with nulls": _table(pa.table({"a": pa.array([1, None, 3], pa.int64()), "y": [0, 1, 0]})),
        "int32 with nulls": _table(pa.table({"a": pa.array([1, None, 3], pa.int32())})),
        "uint8": _table(pa.table({"a": pa.array([1, 2, 3], pa.uint8())})),
        "uint64 past float precision": _table(pa.table({"a": pa.array([2**64 - 1, None], pa.uint64())})),
        "pandas Int64": _frame(pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64")})),
        "pandas Float64": _frame(pd.DataFrame({"a": pd.array([1.5, None], dtype="Float64")})),
        "pandas boolean": _frame(pd.DataFrame({"a": pd.array([True, None], dtype="boolean")})),
        "floats, nan and inf": _frame(pd.DataFrame({"a": [1.5, np.nan, np.inf]})),
        "float32": _table(pa.table({"a": pa.array([1.5, None, 2], pa.float32())})),
        "bools": _frame(pd.DataFrame({"a": [True, False, True]})),
        "bools with nulls": _table(pa.table({"a": pa.array([True, None, False])})),
        "strings": _frame(pd.DataFrame({"a": ["x", "y", None]})),
        "large strings": _table(pa.table({"a": pa.array(["x", "y", None], pa.large_string())})),
        "string view": _table(pa.table({"a": pa.array(["x", "y", None], pa.string_view())})),
        "pandas string": _frame(pd.DataFrame({"a": pd.array(["x", None, "z"], dtype="string")})),
        "binary": _table(pa.table({"a": pa.array([b"x", None], pa.binary())})),
        "null type": _table(pa.table({"a": pa.array([None, None], pa.null()), "b": [1, 2]})),
        "strings all null": _table(pa.table({"a": pa.array([None, None], pa.string())})),
        "dates": _table(pa.table({"a": pa.array(days)})),
        "dates outside datetime64[ns]": _table(
            pa.table({"a": pa.array([dt.date(1, 1, 1), dt.date(9999, 12, 31), None])})
        ),
        "date64": _table(pa.table({"a": pa.array(days, pa.date64())})),
        "pandas dates": _frame(pd.DataFrame({"a": days})),
        "timestamps naive": _frame(pd.DataFrame({"a": pd.to_datetime(["2024-01-01 10:00", None])})),
        "timestamps in a zone": _frame(
            pd.DataFrame({"a": pd.to_datetime(["2024-01-01 10:00", None]).tz_localize("Europe/Paris")})
        ),
        "timestamps us": _table(pa.table({"a": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us"))})),
        "timestamps s, arrow zone": _table(
            pa.table({"a": pa.array([dt.datetime(2024, 1, 1), None], pa.timestamp("s", tz="Europe/Paris"))})
        ),
        "timestamps ms UTC": _table(
            pa.table({"a": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("ms", tz="UTC"))})
        ),
        "timestamps UTC, no arrow schema": _table(
            pa.table({"a": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("ms", tz="UTC"))}),
            store_schema=False,
        ),
        "timestamps far, us": _table(
            pa.table({"a": pa.array([dt.datetime(9999, 1, 1), dt.datetime(1, 1, 1)], pa.timestamp("us"))})
        ),
        "int96 timestamps": _table(
            pa.table({"a": pa.array([dt.datetime(2024, 1, 1, 1, 2, 3), None], pa.timestamp("ns"))}),
            use_deprecated_int96_timestamps=True,
        ),
        "categorical": _frame(pd.DataFrame({"a": pd.Categorical(["x", "y", "x", None])})),
        "categorical, unused categories": _frame(
            pd.DataFrame({"a": pd.Categorical(["x", "y"], categories=["z", "y", "x"])})
        ),
        "categorical over row groups": _frame(
            pd.DataFrame({"a": pd.Categorical(["x", "x", "y", "z", "z", "w"])}), row_group_size=2
        ),
        "categorical of ints": _frame(pd.DataFrame({"a": pd.Categorical([1, 2, 1])})),
        "dictionary strings": _table(pa.table({"a": pa.array(["x", "y", "x", None]).dictionary_encode()})),
        "dictionary ints": _table(pa.table({"a": pa.array([3, 1, 3]).dictionary_encode()})),
        "dictionary over row groups": _table(
            pa.table({"a": pa.array(["y", "y", "x", "z", "x"]).dictionary_encode()}), row_group_size=2
        ),
        "row groups": _table(
            pa.table({"a": list(range(10)), "b": [str(i) for i in range(10)]}), row_group_size=3
        ),
        "row groups, nulls in some": _table(
            pa.table({"a": [1, 2, 3, None, 5, 6], "b": [True, False, None, True, True, False]}),
            row_group_size=2,
        ),
        "empty, pandas": _frame(
            pd.DataFrame({"a": pd.Series([], dtype="int64"), "b": pd.Series([], dtype=object)})
        ),
        "empty, typed": _table(
            pa.table(
                {"a": pa.array([], pa.int64()), "b": pa.array([], pa.string()), "c": pa.array([], pa.bool_())}
            )
        ),
        "data page v2": _table(pa.table({"a": [1, None, 3], "b": ["x", None, "z"]}), data_page_version="2.0"),
        "no statistics": _table(pa.table({"a": [1, 2, 3], "b": [True, False, True]}), write_statistics=False),
        "no dictionary pages": _table(pa.table({"a": [1, 2, 3], "b": ["x", "y", "x"]}), use_dictionary=False),
        "format 1.0": _table(
            pa.table({"a": [1, None], "t": pa.array([dt.datetime(2024, 1, 1), None], pa.timestamp("ms"))}),
            version="1.0",
        ),
        "pandas index": _frame(pd.DataFrame({"a": [1, 2]}, index=pd.Index(["r1", "r2"], name="rid"))),
        "pandas range index": _frame(pd.DataFrame({"a": [1, 2]}, index=pd.RangeIndex(5, 7, name="k"))),
        "pandas int index": _frame(pd.DataFrame({"a": [1, 2]}, index=[10, 20])),
        "pandas multi-index": _frame(
            pd.DataFrame(
                {"a": [1, 2]}, index=pd.MultiIndex.from_tuples([("x", 1), ("y", 2)], names=["k", "n"])
            )
        ),
        "column names not text": _frame(pd.DataFrame({0: [1, 2], 1: ["a", "b"]})),
    }
    for codec in ("snappy", "gzip", "zstd", "lz4", "brotli", "none"):
        if codec == "none" or pa.Codec.is_available(codec):
            columns = {"a": [1, 2, None], "b": ["x", None, "z"], "c": [1.5, None, 2.5]}
            files[f"compression {codec}"] = _table(pa.table(columns), compression=codec)
    return files


REFUSED = {
    "decimal": (
        _table(pa.table({"a": pa.array([decimal.Decimal("1.10"), None], pa.decimal128(5, 2))})),
        "decimal",
    ),
    "list": (_table(pa.table({"a": pa.array([[1, 2], None, []])})), "nested"),
    "struct": (_table(pa.table({"a": pa.array([{"x": 1}, None])})), "nested"),
    "map": (_table(pa.table({"a": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64()))})), "nested"),
    "fixed-size binary": (
        _table(pa.table({"a": pa.array([b"xy", None], pa.binary(2))})),
        "fixed-size binary",
    ),
    "time of day": (_table(pa.table({"a": pa.array([dt.time(1, 2)], pa.time64("us"))})), "time"),
    "duration": (_table(pa.table({"a": pa.array([dt.timedelta(seconds=3)], pa.duration("s"))})), "duration"),
    "decimal, no arrow schema": (
        _table(pa.table({"a": pa.array([decimal.Decimal("1.10")], pa.decimal128(5, 2))}), store_schema=False),
        "decimal values",
    ),
    "time, no arrow schema": (
        _table(pa.table({"a": pa.array([dt.time(1, 2)], pa.time64("us"))}), store_schema=False),
        "times of day",
    ),
}
ACCEPTED = _accepted()


def _pyarrow(data: bytes) -> pd.DataFrame:
    """The training job's read (shared/training/data.py), names as text as validation reads them."""
    frame = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    frame.columns = [str(column) for column in frame.columns]
    return frame


@pytest.mark.parametrize("name", ACCEPTED)
def test_the_app_reads_each_file_as_pyarrow_does(name: str) -> None:
    data, expected = ACCEPTED[name], _pyarrow(ACCEPTED[name])
    pd.testing.assert_frame_equal(read_frame(data), expected)
    assert read_header(data) == list(expected.columns)
    table = ParquetTable(io.BytesIO(data))
    chunks = list(table.frames())
    assert len(chunks) == max(pq.ParquetFile(io.BytesIO(data)).num_row_groups, 1)
    # chunk by chunk, dtypes may differ where only some row groups have empty cells (as pyarrow's batches do),
    # and categories where row groups hold different ones: the values may not
    joined = _plain(pd.concat(chunks).reset_index(drop=True))
    pd.testing.assert_frame_equal(joined, _plain(expected.reset_index(drop=True)), check_dtype=False)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda c: c.astype(object) if isinstance(c.dtype, pd.CategoricalDtype) else c)


@pytest.mark.parametrize("name", REFUSED)
def test_a_file_the_engines_read_differently_is_refused_with_its_reason(name: str) -> None:
    data, reason = REFUSED[name]
    _pyarrow(data)  # the training job would read it, as something else than the app would
    with pytest.raises(ParquetRejected, match=reason):
        read_frame(data)
    for result in (
        validate("f.parquet", data, None, LIMITS),
        validate_chunks("f.parquet", [data], None, LIMITS),
    ):
        assert not result.ok
        assert [p.code for p in result.problems] == [UNREADABLE]
        assert reason in result.problems[0].message


def _verdict(result: validation.Validation) -> tuple[object, ...]:
    return result.ok, result.reasons, result.problems, result.rows, result.schema, result.observed


@pytest.mark.parametrize("name", ACCEPTED)
def test_validation_reaches_the_verdict_it_reaches_on_pyarrows_frame(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = ACCEPTED[name]
    with monkeypatch.context() as patched:
        patched.setattr(validation, "read_frame", _pyarrow)
        learned = validate("f.parquet", data, None, LIMITS)
        declared = learned.observed
        strict = validate("f.parquet", data, _strict(declared), LIMITS) if declared else None
    assert _verdict(validate("f.parquet", data, None, LIMITS)) == _verdict(learned)
    chunked = validate_chunks("f.parquet", [data], None, LIMITS)
    assert (chunked.ok, chunked.problems, chunked.rows) == (learned.ok, learned.problems, learned.rows)
    # read in chunks, a column's kind is that of the values seen: a column with none is a number there
    seen = {c: k for c, k in learned.schema.items() if _pyarrow(data)[c].notna().any()}
    assert {c: k for c, k in chunked.schema.items() if c in seen} == seen
    if strict is not None:
        schema = _strict(declared)
        assert _verdict(validate("f.parquet", data, schema, LIMITS)) == _verdict(strict)
        assert validate_chunks("f.parquet", [data], schema, LIMITS).problems == strict.problems


def _strict(schema: validation.Schema) -> dict[str, object]:
    """The learned schema declared, with nothing nullable: the checks of types, nulls and categories run."""
    columns = {name: {**spec.as_dict(), "nullable": False} for name, spec in schema.columns.items()}
    return {"columns": columns, "formats": [".parquet"]}


def test_a_label_file_in_parquet_is_read_by_its_column_names() -> None:
    data = _frame(pd.DataFrame({"correlation_id": ["r1", "r2"], "label": [1.0, 0.0]}))
    result = validate_labels("l.parquet", data, task="regression", target="y", classes=None, max_bytes=10**6)
    assert result.ok, result.reasons
    assert (result.column, result.labels) == ("label", {"r1": 1.0, "r2": 0.0})


def _claiming(data: bytes, change: object) -> bytes:
    """The file with its footer rewritten by `change` (fastparquet's thrift objects)."""
    (length,) = struct.unpack("<i", data[-8:-4])
    body = data[: len(data) - 8 - length]
    metadata = fastparquet.ParquetFile(io.BytesIO(data)).fmd
    change(metadata)
    footer = bytes(metadata.to_bytes())
    return body + footer + struct.pack("<i", len(footer)) + b"PAR1"


def _huge_rows(metadata: object) -> None:
    metadata.num_rows = metadata.row_groups[0].num_rows = 10**12


def _huge_pages(metadata: object) -> None:
    metadata.row_groups[0].columns[0].meta_data.total_uncompressed_size = 10**13


def _far_pages(metadata: object) -> None:
    metadata.row_groups[0].columns[0].meta_data.total_compressed_size = 10**9


def _wrong_count(metadata: object) -> None:
    metadata.num_rows = 7


def _broken() -> dict[str, bytes]:
    good = ACCEPTED["compression snappy"]
    files = {
        f"truncated to {n} bytes": good[:n] for n in (4, 12, len(good) // 2, len(good) - 9, len(good) - 1)
    }
    files["random bytes"] = np.random.default_rng(7).bytes(2048)
    for seed in range(40):  # fastparquet's own thrift reader crashed the process on some of these
        noise = np.random.default_rng(seed).bytes(2048)
        files[f"random bytes between the magic {seed}"] = b"PAR1" + noise + b"PAR1"
        body = good[: len(good) - 8 - int.from_bytes(good[-8:-4], "little")]
        files[f"random footer {seed}"] = body + noise[:200] + (200).to_bytes(4, "little") + b"PAR1"
        files[f"random pages {seed}"] = good[:4] + noise[: len(body) - 4] + good[len(body) :]
    files["a CSV"] = b"a,b\n1,2\n3,4\n"
    files["footer length past the file"] = good[:-8] + struct.pack("<i", 10**9) + b"PAR1"
    for name, change in (("rows", _huge_rows), ("bytes", _huge_pages), ("places", _far_pages)):
        files[f"footer claiming huge {name}"] = _claiming(good, change)
    files["footer disagreeing on its rows"] = _claiming(good, _wrong_count)
    return files


@pytest.mark.parametrize("name", list(_broken()))
def test_a_broken_file_is_recorded_unreadable_quickly(name: str) -> None:
    data = _broken()[name]
    started = time.monotonic()
    for result in (
        validate("f.parquet", data, None, LIMITS),
        validate_chunks("f.parquet", [data], None, LIMITS),
    ):
        assert not result.ok
        assert [p.code for p in result.problems] == [UNREADABLE], result.problems
        assert result.problems[0].message.startswith("file cannot be read as parquet")
    assert time.monotonic() - started < 5


def test_a_zero_byte_file_is_empty() -> None:
    for result in (
        validate("f.parquet", b"", None, LIMITS),
        validate_chunks("f.parquet", [b""], None, LIMITS),
    ):
        assert [p.code for p in result.problems] == ["empty_file"]


def test_a_huge_row_group_is_refused_before_it_is_read() -> None:
    with pytest.raises(ParquetRejected, match="smaller row groups"):
        ParquetTable(_claiming(ACCEPTED["ints"], _huge_rows))
