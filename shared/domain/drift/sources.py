"""Where the rows come from: a frame in memory, or CSV and Parquet tables read chunk by chunk. Every pass over
a source yields the same rows, so the check can read a source more than once.

What Evidently is compared on is each table read whole by pandas, the tables concatenated. Chunks of a table
carry its index (`frame.attrs["part"]`) so that the check can give each column the dtype that concatenation
gives it; CSV chunks start where pandas' own parser starts the blocks it infers dtypes on, so that a column
mixing numbers and strings holds the same values, number for number and string for string."""

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
        for index, part in enumerate(self.parts):
            data = part.load()
            if data is None:
                log.warning("table vanished during the drift check", extra={"blob": part.name})
                continue
            for frame in _skip_rows(_read_table(part.name, data, self.chunk_rows, columns), part.skip_rows):
                frame.attrs["part"] = index
                yield frame


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

    header = list(pd.read_csv(_handle(data), nrows=0).columns)
    usecols = None
    if columns is not None:
        usecols = [c for c in header if c in set(columns)] or header[:1]
        empty = not set(usecols) & set(columns)
    lines = parser_block_rows(len(header))
    chunk = max(lines, chunk_rows // lines * lines)
    with pd.read_csv(_handle(data), usecols=usecols, chunksize=chunk) as reader:
        for frame in reader:
            yield frame.iloc[:, :0] if columns is not None and empty else frame


def parser_block_rows(width: int) -> int:
    """The rows per block in which pandas' C parser (low_memory, its default) infers dtypes: the largest power
    of two below 2**20 cells / the table's width (pandas/_libs/parsers.pyx, `buffer_lines`). A whole-table read
    concatenates the blocks; chunks of a multiple of this size hold the same blocks, so the same values."""
    heuristic = 2**20 // max(width, 1)
    lines = 1
    while lines * 2 < heuristic:
        lines *= 2
    return lines


def _skip_rows(chunks: Iterator[pd.DataFrame], skip: int) -> Iterator[pd.DataFrame]:
    """The chunks without the table's first `skip` rows. A chunk skipped whole still passes, empty, with one of
    its rows in `attrs["dtypes"]`: the table's dtypes are those of all its rows, skipped or not."""
    for chunk in chunks:
        if skip >= len(chunk) and skip:
            skip -= len(chunk)
            emptied = chunk.iloc[:0]
            emptied.attrs["dtypes"] = chunk.iloc[:1]
            yield emptied
            continue
        yield chunk.iloc[skip:] if skip else chunk
        skip = 0
