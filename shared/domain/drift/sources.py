"""Where the rows come from: a frame in memory, or CSV and Parquet tables read chunk by chunk. Every pass over
a source yields the same rows, so the check can read a source more than once."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 100_000


class ChunkSource(Protocol):
    def chunks(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """The rows, in order, as frames of bounded size; only `columns` (those present) when given.
        Called once per pass: it must yield the same rows every time."""
        ...


@dataclass(frozen=True)
class FrameSource:
    """A frame already in memory, in slices (tests, reference predictions)."""

    frame: Any
    chunk_rows: int = DEFAULT_CHUNK_ROWS

    def chunks(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        frame = self.frame
        if columns is not None:
            frame = frame[[c for c in frame.columns if c in set(columns)]]
        for start in range(0, len(frame), self.chunk_rows):
            yield frame.iloc[start : start + self.chunk_rows]


@dataclass(frozen=True)
class TablePart:
    """One CSV or Parquet table: `load` returns its bytes or a local path (None if it has gone)."""

    name: str
    load: Callable[[], bytes | str | None]
    skip_rows: int = 0  # leading data rows left out (a window that starts inside this table)


@dataclass(frozen=True)
class TableSource:
    parts: tuple[TablePart, ...]
    chunk_rows: int = DEFAULT_CHUNK_ROWS

    def chunks(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        for part in self.parts:
            data = part.load()
            if data is None:
                log.warning("table vanished during the drift check", extra={"blob": part.name})
                continue
            yield from _skip_rows(_read_table(part.name, data, self.chunk_rows, columns), part.skip_rows)


def count_rows(name: str, data: bytes | str) -> int:
    """Data rows of a CSV or Parquet table, without holding it parsed."""
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(_handle(data)).metadata.num_rows
    return sum(len(chunk) for chunk in _read_table(name, data, DEFAULT_CHUNK_ROWS, columns=()))


def _handle(data: bytes | str) -> Any:
    return io.BytesIO(data) if isinstance(data, bytes) else data


def _read_table(
    name: str, data: bytes | str, chunk_rows: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    """Chunks of one table. Asked for columns it lacks, it still yields its rows (with no columns), because
    rows without a column are missing values in the concatenated data Evidently would see."""
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.ParquetFile(_handle(data))
        names = table.schema_arrow.names
        wanted = names if columns is None else [c for c in names if c in set(columns)]
        for batch in table.iter_batches(batch_size=chunk_rows, columns=wanted or names[:1]):
            frame = batch.to_pandas()
            yield frame if wanted else frame.iloc[:, :0]
        return
    import pandas as pd

    usecols = None
    if columns is not None:
        header = list(pd.read_csv(_handle(data), nrows=0).columns)
        usecols = [c for c in header if c in set(columns)] or header[:1]
        empty = not set(usecols) & set(columns)
    with pd.read_csv(_handle(data), usecols=usecols, chunksize=chunk_rows) as reader:
        for frame in reader:
            yield frame.iloc[:, :0] if columns is not None and empty else frame


def _skip_rows(chunks: Iterator[pd.DataFrame], skip: int) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        yield chunk.iloc[skip:] if skip else chunk
        skip = 0
