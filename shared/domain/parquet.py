"""Parquet as the app reads it: with fastparquet (a tenth of pyarrow's install size), giving the frames the
training job gets from `pandas.read_parquet` with pyarrow. Every reader of Parquet in the app comes here.

What the app accepts must be what training reads the same way, so each column is checked against what both
engines read alike, then its dtype is made the one pyarrow's `to_pandas` gives:
- integers with empty cells are float64 (fastparquet: masked Int64), booleans with empty cells objects
  (fastparquet: masked boolean), unless the pandas metadata stored in the file asks for the masked type;
- other pandas extension dtypes the metadata names (`string`, `Float64`) are restored, as pyarrow does;
- dates are `datetime.date` objects (fastparquet: datetime64[ns], which wraps dates outside 1677-2262
  silently, so dates are read as their day numbers and converted here);
- timestamps keep the time zone and unit of the stored Arrow schema (UTC when the file says only "adjusted to
  UTC"); a column pyarrow wrote as a dictionary is categorical; a column of the null type is objects of None;
- column names are text (validation reads them so; the pandas metadata's non-text names are not restored).
Columns the two read differently are refused with the reason: nested (list, struct, map), decimal (pyarrow
gives `Decimal` objects, fastparquet floats), time of day, fixed-length bytes (UUID, float16), JSON and BSON,
and Arrow types with no Parquet equivalent pyarrow restores from the Arrow schema (durations, intervals).
tests/unit/domain/test_parquet_parity.py holds both engines to this over a corpus of files.

Memory: `frames` reads one row group at a time, since fastparquet reads no less. A file written as one huge
row group is read whole; its footer says how large each group is, and a group past `MAX_CELLS_PER_ROW_GROUP` or
`MAX_ROW_GROUP_BYTES` is refused before anything is read. A footer claiming more than the file holds is too.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from shared.domain.arrow_schema import (
    BINARY,
    BINARY_VIEW,
    BOOL,
    DATE,
    FLOAT,
    INT,
    LARGE_BINARY,
    LARGE_UTF8,
    NULL,
    TIMESTAMP,
    UTF8,
    UTF8_VIEW,
    ArrowField,
    read_arrow_fields,
)
from shared.domain.thrift_check import check_struct

MAX_CELLS_PER_ROW_GROUP = 1 << 26  # 64 Mi cells: about 512 MiB as float64, the most held at once
MAX_ROW_GROUP_BYTES = 1 << 30  # uncompressed, as the footer states it
_ARROW_TYPES = {NULL, INT, FLOAT, BINARY, UTF8, BOOL, DATE, TIMESTAMP, LARGE_BINARY, LARGE_UTF8}
_ARROW_TYPES |= {BINARY_VIEW, UTF8_VIEW}
_TEXT_TYPES = {BINARY, UTF8, LARGE_BINARY, LARGE_UTF8, BINARY_VIEW, UTF8_VIEW}
# Parquet's physical types and converted types (parquet.thrift)
_BOOLEAN, _INT32, _INT64, _INT96, _FLOAT, _DOUBLE, _BYTE_ARRAY = 0, 1, 2, 3, 4, 5, 6
_UTF8, _ENUM, _DATE, _TIMESTAMP_MILLIS, _TIMESTAMP_MICROS = 0, 4, 6, 9, 10
_INTEGERS = set(range(11, 19))  # UINT_8 ... INT_64
_REPEATED = 2


class ParquetRejected(ValueError):
    """The file is not read: pyarrow and fastparquet would not give the same table, or its footer is not
    believable. The message says why, for the person who wrote it."""


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # "plain" | "null" | "date" | "timestamp" | "int" | "bool"
    unit: str | None = None
    timezone: str | None = None
    dictionary: bool = False
    extension: str | None = None  # the pandas extension dtype the pandas metadata names


class ParquetTable:
    """One Parquet file (bytes, or a seekable binary file), checked and ready to read."""

    def __init__(self, source: bytes | IO[bytes]) -> None:
        import fastparquet

        file = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
        file.seek(0, io.SEEK_END)
        size = file.tell()
        _check_thrift(file, size)
        file.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._file = fastparquet.ParquetFile(file)
        _check_footer(self._file.fmd, size)
        _check_pages(file, self._file.fmd, size)
        # an empty row group is not read at all (its pages are not checked)
        self._file.fmd.row_groups = [g for g in self._file.fmd.row_groups or [] if g.num_rows]
        self._file._set_attrs()
        self._columns = _plan(self._file)
        _read_dates_as_days(self._file, self._columns)
        index = self._file.pandas_metadata.get("index_columns", []) if self._file.has_pandas_metadata else []
        self.header = [c for c in self._columns if c not in {i for i in index if isinstance(i, str)}]

    def frame(self) -> Any:
        """The whole table."""
        return self._normal(self._file.to_pandas())

    def frames(self) -> Iterator[Any]:
        """The table one row group at a time; one empty frame if it has no rows."""
        groups = len(self._file.row_groups)
        for group in range(groups):
            frame = self._normal(self._file[group].to_pandas())
            if len(frame) or group == groups - 1:
                yield frame
        if not groups:
            yield self.frame()

    def _normal(self, frame: Any) -> Any:
        for name in frame.columns:
            if name in self._columns:
                frame[name] = _normal_column(frame[name], self._columns[name])
        frame.columns = [str(name) for name in frame.columns]
        return frame


def read_header(data: bytes) -> list[str]:
    """The column names of a Parquet file's data (not its stored pandas index), from the footer."""
    return ParquetTable(data).header


def read_frame(data: bytes) -> Any:
    """The whole table of a Parquet file, as the training job reads it."""
    return ParquetTable(data).frame()


def _check_thrift(file: IO[bytes], size: int) -> None:
    """The footer and every page header well-formed, before fastparquet's reader (which trusts them) parses them."""
    if size < 12:
        raise ParquetRejected(f"{size} bytes are too few for a Parquet file")
    file.seek(size - 8)
    tail = file.read(8)
    file.seek(0)
    if tail[4:] != b"PAR1" or file.read(4) != b"PAR1":
        raise ParquetRejected("it does not begin and end with Parquet's magic number")
    length = int.from_bytes(tail[:4], "little", signed=True)
    if not 0 < length <= size - 12:
        raise ParquetRejected(f"its footer claims {length} bytes, the file has {size}")
    file.seek(size - 8 - length)
    footer = file.read(length)
    try:
        end, _ = check_struct(footer)
    except ValueError as error:
        raise ParquetRejected(f"its footer is corrupt ({error})") from None
    if end != length:
        raise ParquetRejected("its footer is corrupt (it ends before its stated length)")


def _check_pages(file: IO[bytes], fmd: Any, size: int) -> None:
    """Every page header of every column chunk walked (see `thrift_check`), the pages kept inside their chunk."""
    for group in fmd.row_groups or []:
        for chunk in group.columns if group.num_rows else ():  # an empty group's pages are not read
            meta = chunk.meta_data
            at = min(o for o in (meta.dictionary_page_offset, meta.data_page_offset) if o is not None)
            end = at + meta.total_compressed_size
            while at < end:
                file.seek(at)
                window = file.read(min(end - at, 1 << 16))
                try:
                    used, fields = check_struct(window)
                except ValueError as error:
                    raise ParquetRejected(f"a page header is corrupt ({error})") from None
                compressed = fields.get(3, -1)  # PageHeader.compressed_page_size
                if compressed < 0 or fields.get(2, -1) < 0:
                    raise ParquetRejected("a page header gives a negative size")
                at += used + compressed
            if at != end:
                raise ParquetRejected("a column chunk's pages do not fill it")
    file.seek(0)


def _check_footer(fmd: Any, size: int) -> None:
    groups = fmd.row_groups or []
    leaves = max(len(fmd.schema) - 1, 1)
    claimed = sum(group.num_rows for group in groups)
    if fmd.num_rows != claimed:
        raise ParquetRejected(f"the footer says {fmd.num_rows} rows, its row groups hold {claimed}")
    for number, group in enumerate(groups):
        if group.num_rows < 0 or group.num_rows * leaves > MAX_CELLS_PER_ROW_GROUP:
            raise ParquetRejected(
                f"row group {number} holds {group.num_rows} rows of {leaves} columns, more than the "
                f"{MAX_CELLS_PER_ROW_GROUP} cells read at once: write the file in smaller row groups"
            )
        unpacked = sum(chunk.meta_data.total_uncompressed_size for chunk in group.columns)
        if unpacked > MAX_ROW_GROUP_BYTES:
            raise ParquetRejected(
                f"row group {number} holds {unpacked} bytes uncompressed, more than the "
                f"{MAX_ROW_GROUP_BYTES} read at once: write the file in smaller row groups"
            )
        for chunk in group.columns:
            meta = chunk.meta_data
            start = min(o for o in (meta.dictionary_page_offset, meta.data_page_offset) if o is not None)
            if start < 0 or meta.total_compressed_size < 0 or start + meta.total_compressed_size > size:
                raise ParquetRejected(f"the footer places column data past the file's {size} bytes")


def _plan(file: Any) -> dict[str, _Column]:
    """Each top-level column's reading, or `ParquetRejected` for one the two engines read differently."""
    elements = file.fmd.schema
    top, position = [], 1
    while position < len(elements):  # the root's children, skipping each one's own children
        top.append(elements[position])
        position += 1 + _descendants(elements, position)
    names = [element.name for element in top]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ParquetRejected(f"column {repeated[0]} appears more than once")
    arrow = _arrow_fields(file)
    pandas = {}
    if file.has_pandas_metadata:
        pandas = {c.get("field_name") or c.get("name"): c for c in file.pandas_metadata.get("columns", [])}
        _names_as_text(file)
    return {e.name: _column(e, arrow.get(e.name), pandas.get(e.name, {})) for e in top}


def _descendants(elements: list[Any], position: int) -> int:
    count = 0
    for _ in range(elements[position].num_children or 0):
        child = position + 1 + count
        count += 1 + _descendants(elements, child)
    return count


def _arrow_fields(file: Any) -> dict[str, ArrowField]:
    stored = file.key_value_metadata.get("ARROW:schema")
    if not stored:
        return {}
    try:
        return {field.name: field for field in read_arrow_fields(stored)}
    except (ValueError, IndexError, UnicodeDecodeError, __import__("struct").error) as error:
        raise ParquetRejected(f"its stored Arrow schema cannot be read ({error})") from None


def _column(element: Any, arrow: ArrowField | None, pandas: dict[str, Any]) -> _Column:
    name, logical, converted = element.name, element.logicalType, element.converted_type
    if element.num_children or element.repetition_type == _REPEATED:
        raise ParquetRejected(f"column {name} is nested (a list, struct or map): write it as plain columns")
    if arrow is not None and arrow.type not in _ARROW_TYPES:
        raise ParquetRejected(
            f"column {name} holds Arrow {arrow.type_name} values, which the app does not read"
        )
    refused = _refused(element, logical, converted)
    if refused:
        raise ParquetRejected(
            f"column {name} holds {refused}, which the app does not read: {_ADVICE[refused]}"
        )
    # pyarrow reads a dictionary back as categorical for text and bytes only (numbers come back plain)
    dictionary = arrow is not None and arrow.dictionary and arrow.type in _TEXT_TYPES
    extension = _extension(pandas)
    kind = "plain"
    if logical is not None and logical.UNKNOWN is not None:
        kind = "null"
    elif element.type == _INT32 and (
        converted == _DATE or (logical is not None and logical.DATE is not None)
    ):
        kind = "date"
    elif element.type == _INT96 or _timestamp_unit(element) is not None:
        unit = _timestamp_unit(element) or "ns"  # pyarrow keeps Parquet's unit, not the Arrow schema's
        utc = logical is not None and logical.TIMESTAMP is not None and logical.TIMESTAMP.isAdjustedToUTC
        timezone = arrow.timezone if arrow is not None else ("UTC" if utc else None)
        return _Column(name, "timestamp", unit, timezone, dictionary, extension)
    elif element.type in (_INT32, _INT64):
        kind = "int"
    elif element.type == _BOOLEAN:
        kind = "bool"
    return _Column(name, kind, dictionary=dictionary, extension=extension)


_ADVICE = {
    "decimal values": "pyarrow reads them as Decimal objects, fastparquet as floats; write them as floats",
    "times of day": "write them as text or as seconds",
    "fixed-length bytes": "write them as text or bytes",
    "JSON or BSON documents": "write them as text",
    "values of an unknown Parquet type": "write plain numbers, text, booleans, dates or timestamps",
}


def _refused(element: Any, logical: Any, converted: int | None) -> str | None:
    if (logical is not None and logical.DECIMAL is not None) or converted == 5:
        return "decimal values"
    if (logical is not None and logical.TIME is not None) or converted in (7, 8):
        return "times of day"
    if element.type == 7:
        return "fixed-length bytes"
    if (logical is not None and (logical.JSON is not None or logical.BSON is not None)) or converted in (
        19,
        20,
    ):
        return "JSON or BSON documents"
    known = {None, _UTF8, _ENUM, _DATE, _TIMESTAMP_MILLIS, _TIMESTAMP_MICROS, *_INTEGERS}
    if converted not in known or element.type not in range(7):
        return "values of an unknown Parquet type"
    return None


def _timestamp_unit(element: Any) -> str | None:
    logical = element.logicalType
    if logical is not None and logical.TIMESTAMP is not None:
        unit = logical.TIMESTAMP.unit
        return "ms" if unit.MILLIS is not None else "us" if unit.MICROS is not None else "ns"
    return {_TIMESTAMP_MILLIS: "ms", _TIMESTAMP_MICROS: "us"}.get(element.converted_type)


def _extension(pandas: dict[str, Any]) -> str | None:
    """A pandas extension dtype the metadata names, that pyarrow restores (`Int64`, `boolean`, `string`)."""
    from pandas.api.types import pandas_dtype

    named = pandas.get("numpy_type")
    if not isinstance(named, str) or named in ("object", "category") or named.startswith("datetime64"):
        return None
    try:
        dtype = pandas_dtype(named)
    except (TypeError, ValueError):
        return None
    return named if dtype.__class__.__module__.startswith("pandas.core.arrays") else None


def _names_as_text(file: Any) -> None:
    """fastparquet fails on pandas metadata whose column names are not text; the app reads names as text."""
    metadata = file.pandas_metadata
    for index in metadata.get("column_indexes", []):
        if index.get("numpy_type") not in ("object", "str", None):
            index["numpy_type"] = "object"
            index["pandas_type"] = "unicode"
    for entry in file.fmd.key_value_metadata or []:
        if entry.key in ("pandas", b"pandas"):
            text = json.dumps(metadata)
            entry.value = text.encode() if isinstance(entry.value, bytes) else text
    file._pdm = file._kvm = file._columns_dtype = None


def _read_dates_as_days(file: Any, columns: dict[str, _Column]) -> None:
    """fastparquet turns dates into datetime64[ns], wrapping those outside 1677-2262: read the day numbers."""
    dates = {name for name, column in columns.items() if column.kind == "date"}
    if not dates:
        return
    for element in file.fmd.schema:
        if element.name in dates and not element.num_children:
            element.converted_type = None
            element.logicalType = None
    file._base_dtype = None
    file._set_attrs()


def _normal_column(values: Any, column: _Column) -> Any:
    import numpy as np
    import pandas as pd

    if column.extension is not None:
        return values.astype(column.extension)
    if column.kind == "null":
        return pd.Series([None] * len(values), index=values.index, dtype=object)
    if column.kind == "date":
        days = values.to_numpy(dtype="float64", na_value=np.nan)
        dates = [None if np.isnan(d) else np.datetime64(int(d), "D").astype(object) for d in days]
        return pd.Series(dates, index=values.index, dtype=object)
    if column.kind == "timestamp":
        return _timestamps(values, column)
    categorical = isinstance(values.dtype, pd.CategoricalDtype)
    if categorical and column.kind in ("int", "bool"):  # pandas categories of numbers: pyarrow reads numbers
        plain = values.dtype.categories.dtype
        values = values.astype(
            plain if not values.isna().any() else "float64" if column.kind == "int" else object
        )
    elif column.dictionary and not categorical:
        return pd.Series(pd.Categorical(values, categories=pd.unique(values.dropna())), index=values.index)
    if column.kind in ("int", "bool") and isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        if values.isna().any():
            return (
                values.astype("float64")
                if column.kind == "int"
                else values.astype(object).where(values.notna(), None)
            )
        return values.astype(values.dtype.numpy_dtype)
    return values


def _timestamps(values: Any, column: _Column) -> Any:
    import pandas as pd

    aware = isinstance(values.dtype, pd.DatetimeTZDtype)
    if column.timezone and not aware:
        values = values.dt.tz_localize("UTC").dt.tz_convert(column.timezone)
    elif column.timezone:
        values = values.dt.tz_convert(column.timezone)
    elif aware:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    unit = column.unit or "ns"
    target = pd.DatetimeTZDtype(unit, column.timezone) if column.timezone else f"datetime64[{unit}]"
    return values.astype(target)
