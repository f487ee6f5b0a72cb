"""Sources of rows that are not tables: records such as captured traffic, and several sources read as one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.domain.drift.sources import DEFAULT_CHUNK_ROWS, ChunkSource

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RecordSource:
    """Rows as JSON objects (`rows()` starts a fresh pass each time), framed `chunk_rows` at a time, as one data
    set: `pd.DataFrame.from_records` of every row, which Evidently would see. A key a row lacks is a missing
    value; a field that no row of a chunk gives a value is missing values without a type of their own (framed
    alone, a chunk's nulls would be objects, and make a column of numbers look mixed)."""

    rows: Callable[[], Iterable[dict[str, Any]]]
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    skip_rows: int = 0  # leading rows left out (a window that starts inside the first hour)

    def chunks(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        batch: list[dict[str, Any]] = []
        skip = self.skip_rows
        for row in self.rows():
            if skip:
                skip -= 1
                continue
            batch.append(row)
            if len(batch) >= self.chunk_rows:
                yield _frame(batch, columns)
                batch = []
        if batch:
            yield _frame(batch, columns)


@dataclass(frozen=True)
class ChainSource:
    """Several sources, one after another, as one data set."""

    sources: tuple[ChunkSource, ...]

    def chunks(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        for source in self.sources:
            yield from source.chunks(columns)


def _frame(batch: list[dict[str, Any]], columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_records(batch)
    if columns is not None:
        frame = frame[[c for c in frame.columns if c in set(columns)]]
    nulls = [name for name in frame.columns if frame[name].dtype == object and frame[name].isna().all()]
    if nulls:
        frame[nulls] = frame[nulls].astype("float64")
    return frame
