"""Validation of a landed file read a chunk at a time: the checks of `shared.domain.validation`, with memory
bounded by one chunk of rows whatever the file's size.

CSV is parsed as it arrives (pandas `read_csv(chunksize=...)` over the stream of bytes); Parquet is spooled to a
temporary file (its footer comes last) and read one row group at a time. The content hash is taken in the
same pass. Every check is summed over the chunks, so a file gets the verdict and the reasons it would get read
whole, with one deliberate difference: a column that some chunks hold as numbers and others as text is learned
as text, never as categories (a chunk's numbers would be written as text one way, the next file's another way).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from shared.domain.data_schema import (
    MAX_LEARNED_CATEGORIES,
    MIN_ROWS_PER_LEARNED_CATEGORY,
    NUMERIC_TYPES,
    ColumnSpec,
    Schema,
    as_schema,
    category_text,
)
from shared.domain.parquet import ParquetTable
from shared.domain.validation import (
    _SHOWN_VALUES,
    ABOVE_MAXIMUM,
    BAD_ENCODING,
    BELOW_MINIMUM,
    DUPLICATE_COLUMN,
    EMPTY_FILE,
    FILE_TOO_LARGE,
    MISSING_COLUMN,
    MISSING_TARGET,
    NON_FINITE,
    NULL_TARGET,
    NULL_VALUES,
    TOO_FEW_ROWS,
    UNEXPECTED_COLUMN,
    UNKNOWN_CATEGORY,
    UNREADABLE,
    WRONG_TYPE,
    Limits,
    Validation,
    _Findings,
    _is_utf8,
    _text_columns,
    check_format,
)

ROWS_PER_CHUNK = 100_000


def validate_chunks(
    name: str,
    chunks: Iterable[bytes],
    schema: Schema | Any | None,
    limits: Limits,
    *,
    size: int | None = None,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> Validation:
    """Validate the file whose bytes `chunks` yields, as `validation.validate` does the whole file. `size`, when
    known (the blob's properties), rejects an oversized file before a byte is read; without it, reading stops at
    the limit. An error raised by `chunks` itself (the blob changed while it was read) is raised again."""
    expected = None if schema is None else as_schema(schema)
    findings = _Findings()
    source = _Source(chunks, limits.max_bytes)

    def rejected(format_: str, read_all: bool = True) -> Validation:
        sha = source.drain() if read_all else ""
        problems = tuple(findings.problems)
        return Validation(False, tuple(findings.reasons), sha, 0, problems=problems, format=format_)

    suffix = check_format(name, expected, findings)
    if suffix is None:
        return rejected(findings.format)
    format_ = suffix[1:]
    if size is not None and size > limits.max_bytes:
        findings.add(
            FILE_TOO_LARGE, None, f"file has {size} bytes, more than the limit of {limits.max_bytes}"
        )
        return rejected(format_, read_all=False)
    encoding = (expected.encoding if expected else "utf-8") if suffix == ".csv" else None
    tally = _Tally(expected, limits.target, learn=expected is None)
    try:
        if source.is_blank():
            findings.add(EMPTY_FILE, None, "file is empty")
            return rejected(format_)
        if suffix == ".parquet":
            _read_parquet(source, tally)
        else:
            _read_csv(source, encoding, _text_columns(expected), rows_per_chunk, tally)
    except _TooLarge:
        findings.add(
            FILE_TOO_LARGE,
            None,
            f"file has more than {limits.max_bytes} bytes, the limit (it grew while read)",
        )
        return rejected(format_, read_all=False)
    except _BadEncoding as error:
        label = "UTF-8" if _is_utf8(encoding) else encoding
        findings.add(BAD_ENCODING, None, f"file is not {label}: {error.reason} at byte {error.position}")
        return rejected(format_)
    except Exception as error:  # pandas and fastparquet raise many types for unreadable input: "not a table"
        if source.failure is not None:
            raise source.failure from None
        findings.add(UNREADABLE, None, f"file cannot be read as {format_}: {type(error).__name__}: {error}")
        return rejected(format_)
    sha = source.drain()
    tally.judge(limits, findings)
    return Validation(
        not findings.problems,
        tuple(findings.reasons),
        sha,
        tally.rows,
        tally.kinds(),
        tuple(findings.problems),
        tally.observed(encoding) if tally.learn else None,
        format_,
        encoding,
    )


class _TooLarge(Exception):
    pass


class _BadEncoding(Exception):
    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at byte {position}")
        self.reason = reason
        self.position = position


class _Source:
    """The file's bytes as they come: hashed, counted and held to the size limit, then handed on through `read`
    (a file object for pandas) or `pieces` (for spooling)."""

    def __init__(self, chunks: Iterable[bytes], max_bytes: int) -> None:
        self._chunks = iter(chunks)
        self._max = max_bytes
        self._sha = hashlib.sha256()
        self._ahead: list[
            bytes
        ] = []  # chunks taken early (to see whether the file is blank), not handed on yet
        self._current = memoryview(b"")
        self.size = 0
        self.failure: BaseException | None = None
        self._check: Any = None  # per chunk: raises _BadEncoding, returns the bytes to hand on

    def _next(self) -> bytes | None:
        return self._ahead.pop(0) if self._ahead else self._pull()

    def _pull(self) -> bytes | None:
        try:
            chunk = next(self._chunks, None)
        except Exception as error:
            self.failure = error
            raise
        if chunk is None:
            return None
        self._sha.update(chunk)
        self.size += len(chunk)
        if self.size > self._max:
            raise _TooLarge
        return chunk

    def is_blank(self) -> bool:
        """Whether the file holds nothing but white space (reads ahead to its first other byte)."""
        while True:
            chunk = self._pull()
            if chunk is None:
                return True
            self._ahead.append(chunk)
            if chunk and not chunk.isspace():
                return False

    def pieces(self) -> Iterator[bytes]:
        while (chunk := self._next()) is not None:
            yield chunk

    def start_text(self, encoding: str) -> str:
        """Hand on UTF-8 from here, checked: the bytes as they are when the file is UTF-8 (a byte-order mark
        dropped), else decoded from `encoding` and written as UTF-8. Returns the first line, the header."""
        decoder = codecs.getincrementaldecoder(encoding)()
        utf8, offset = _is_utf8(encoding), 0

        def check(chunk: bytes, final: bool = False) -> bytes:
            nonlocal offset
            start, offset = offset, offset + len(chunk)
            if start == 0 and utf8 and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8) :]
            if utf8 and chunk.isascii() and not final:
                return chunk
            try:
                text = decoder.decode(chunk, final)
            except UnicodeDecodeError as error:
                raise _BadEncoding(str(error.reason), start + error.start) from None
            return chunk if utf8 else text.encode("utf-8")

        self._check = check
        head = b""
        while b"\n" not in head and (chunk := self._next()) is not None:
            head += check(chunk)
        self._current = memoryview(head)
        first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
        return first

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join([bytes(self._current), *(self._checked(c) for c in self.pieces())])
        while not len(self._current):
            chunk = self._next()
            if chunk is None:
                if self._check is not None:
                    self._check(b"", True)  # a character cut off at the end is an encoding error too
                return b""
            self._current = memoryview(self._checked(chunk))
        piece, self._current = self._current[:size], self._current[size:]
        return bytes(piece)

    def _checked(self, chunk: bytes) -> bytes:
        return self._check(chunk) if self._check is not None else chunk

    def readable(self) -> bool:
        return True

    def drain(self) -> str:
        """Read what is left (the hash is of the whole file) and return the hash."""
        self._ahead.clear()
        self._current = memoryview(b"")
        for _ in self.pieces():
            pass
        return self._sha.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        return self.pieces()


def _read_csv(
    source: _Source, encoding: str | None, text_columns: list[str], rows: int, tally: _Tally
) -> None:
    import pandas as pd

    # The header as written (pandas renames a repeated column `a` to `a.1`).
    header = next(csv.reader(io.StringIO(source.start_text(encoding or "utf-8"))), [])
    # Declared text and category columns stay strings: "007" is not 7.
    reader = pd.read_csv(
        source, dtype=dict.fromkeys(text_columns, str) or None, chunksize=rows, encoding="utf-8"
    )
    with reader:
        for frame in reader:
            tally.add(frame, header)


def _read_parquet(source: _Source, tally: _Tally) -> None:
    """One row group at a time: the chunks are the file's own (see `shared.domain.parquet` on their size)."""
    with tempfile.TemporaryFile() as spool:
        for chunk in source.pieces():
            spool.write(chunk)
        table = ParquetTable(spool)
        for frame in table.frames():
            tally.add(frame, table.header)


class _Column:
    """What the chunks showed of one column, summed."""

    def __init__(self) -> None:
        self.cells = self.nulls = self.infinite = self.fractional = 0
        self.below = self.above = self.unknown_count = 0
        self.text = self.numbers = False  # some chunk held present values of that kind
        self.lowest: float | None = None  # of every number (the range checks' figures)
        self.highest: float | None = None
        self.low: float | None = None  # of the finite numbers (what a learned schema records)
        self.high: float | None = None
        self.values: set[str] | None = set()  # distinct texts while few enough to be categories
        self.unknown: set[str] = set()

    @property
    def present(self) -> int:
        return self.cells - self.nulls


class _Tally:
    def __init__(self, expected: Schema | None, target: str, learn: bool) -> None:
        self.expected = expected
        self.target = target
        self.learn = learn
        self.rows = 0
        self.columns: dict[str, _Column] = {}
        self.header: list[str] = []

    def add(self, frame: Any, header: list[str]) -> None:
        frame.columns = [str(column) for column in frame.columns]
        if not self.columns and not self.header:
            self.header = header
            self.columns = {column: _Column() for column in frame.columns}
        self.rows += len(frame)
        specs = self.expected.columns if self.expected else {}
        for column, seen in self.columns.items():
            _add_values(seen, frame[column], specs.get(column), self.learn)

    def kinds(self) -> dict[str, str]:
        return {column: "text" if seen.text else "number" for column, seen in self.columns.items()}

    def judge(self, limits: Limits, findings: _Findings) -> None:
        header, names, expected = self.header, list(self.columns), self.expected
        duplicates = sorted({c for c in header if header.count(c) > 1})
        findings.add_columns(
            DUPLICATE_COLUMN, duplicates, "duplicate columns", "column {column} appears more than once"
        )
        if limits.target not in self.columns:
            findings.add(MISSING_TARGET, limits.target, f"target column {limits.target!r} is missing")
        if expected is not None:
            missing = sorted(set(expected.columns) - set(names))
            findings.add_columns(MISSING_COLUMN, missing, "missing columns", "column {column} is missing")
            if not expected.allow_extra_columns:
                renamed = {c for c in names if c not in header}
                extra = sorted(set(names) - set(expected.columns) - renamed)
                findings.add_columns(
                    UNEXPECTED_COLUMN, extra, "unexpected columns", "column {column} is not in the schema"
                )
            for column in sorted(set(expected.columns) & set(names)):
                spec = expected.columns[column]
                _judge_column(column, self.columns[column], spec, column == limits.target, findings)
        for column in names:
            seen = self.columns[column]
            if (expected is None or column not in expected.columns) and not seen.text and seen.infinite:
                findings.add(NON_FINITE, column, f"column {column} has {seen.infinite} infinite values")
        if self.rows < limits.min_rows:
            findings.add(
                TOO_FEW_ROWS, None, f"file has {self.rows} rows, fewer than the minimum of {limits.min_rows}"
            )
        target = self.columns.get(limits.target)
        if target is not None and target.nulls:
            findings.add(
                NULL_TARGET, limits.target, f"target column {limits.target!r} has {target.nulls} empty values"
            )

    def observed(self, encoding: str | None) -> Schema:
        columns = {}
        for column, seen in self.columns.items():
            nullable = seen.nulls > 0
            if not seen.present:
                columns[column] = ColumnSpec("text", nullable=True)  # nothing seen: constrain nothing
            elif not seen.text:
                columns[column] = ColumnSpec(
                    "number", nullable, observed_min=seen.low, observed_max=seen.high
                )
            elif (
                not seen.numbers
                and seen.values is not None
                and seen.present >= MIN_ROWS_PER_LEARNED_CATEGORY * len(seen.values)
            ):
                columns[column] = ColumnSpec("category", nullable, categories=tuple(sorted(seen.values)))
            else:
                columns[column] = ColumnSpec("text", nullable)
        return Schema(columns, source="learned", encoding=encoding or "utf-8")


def _add_values(seen: _Column, values: Any, spec: ColumnSpec | None, learn: bool) -> None:
    import numpy as np
    from pandas.api.types import is_numeric_dtype

    present = values.dropna()
    seen.cells += len(values)
    seen.nulls += len(values) - len(present)
    if present.empty:
        return
    if is_numeric_dtype(values):
        seen.numbers = True
        numbers = present.to_numpy(dtype="float64")
        infinite = np.isinf(numbers)
        seen.infinite += int(infinite.sum())
        finite = numbers[~infinite]
        if len(finite):
            seen.low = _least(seen.low, float(finite.min()))
            seen.high = _most(seen.high, float(finite.max()))
        seen.lowest = _least(seen.lowest, float(numbers.min()))
        seen.highest = _most(seen.highest, float(numbers.max()))
        if spec is not None and spec.type == "integer":
            seen.fractional += int((numbers != np.round(numbers)).sum())
        if spec is not None and spec.min is not None:
            seen.below += int((numbers < spec.min).sum())
        if spec is not None and spec.max is not None:
            seen.above += int((numbers > spec.max).sum())
        return
    seen.text = True
    categories = spec.categories if spec is not None and spec.type == "category" else None
    if categories is None and not (learn and seen.values is not None):
        return
    texts = {value: category_text(value) for value in present.unique().tolist()}
    if categories is not None:
        allowed = set(categories)
        unknown = [value for value, text in texts.items() if text not in allowed]
        if unknown:
            seen.unknown.update(texts[value] for value in unknown)
            seen.unknown_count += int(present.isin(unknown).sum())
    if learn and seen.values is not None:
        seen.values.update(texts.values())
        if len(seen.values) > MAX_LEARNED_CATEGORIES:
            seen.values = None


def _judge_column(column: str, seen: _Column, spec: ColumnSpec, is_target: bool, findings: _Findings) -> None:
    if not spec.nullable and not is_target and seen.nulls:
        findings.add(
            NULL_VALUES, column, f"column {column} has {seen.nulls} empty values but is not nullable"
        )
    if not seen.present:
        return  # an empty column has no type to get wrong
    if spec.type in NUMERIC_TYPES:
        if seen.text:
            findings.add(WRONG_TYPE, column, f"column {column} is text, expected {spec.type}")
            return
        if seen.infinite:
            findings.add(NON_FINITE, column, f"column {column} has {seen.infinite} infinite values")
            return
        if spec.type == "integer" and seen.fractional:
            findings.add(
                WRONG_TYPE,
                column,
                f"column {column} has {seen.fractional} non-integer values, expected integer",
            )
        if spec.min is not None and seen.below:
            findings.add(
                BELOW_MINIMUM,
                column,
                f"column {column} has {seen.below} values below the minimum {spec.min:g} "
                f"(lowest {seen.lowest:g})",
            )
        if spec.max is not None and seen.above:
            findings.add(
                ABOVE_MAXIMUM,
                column,
                f"column {column} has {seen.above} values above the maximum {spec.max:g} "
                f"(highest {seen.highest:g})",
            )
    elif spec.type == "category" and seen.unknown:
        unknown = sorted(seen.unknown)
        shown = ", ".join(repr(v) for v in unknown[:_SHOWN_VALUES]) + (
            ", ..." if len(unknown) > _SHOWN_VALUES else ""
        )
        findings.add(
            UNKNOWN_CATEGORY,
            column,
            f"column {column} has {seen.unknown_count} values outside its categories: {shown}",
        )


def _least(current: float | None, value: float) -> float:
    return value if current is None or value < current else current


def _most(current: float | None, value: float) -> float:
    return value if current is None or value > current else current
