"""What one pass over a data set learns about each column, in bounded memory: the dtype pandas gives the whole
column (the tables read whole, then concatenated), what Evidently's type inference reads from it, value counts,
+-inf and missing values, and for numbers the accumulators of `accumulators`; and a uniform sample of rows."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import shared.domain.drift.accumulators as accumulators
from shared.domain.drift.accumulators import (
    Counts,
    Held,
    Histogram,
    Ladder,
    Moments,
    RowSample,
)
from shared.domain.drift.categories import Sketch
from shared.domain.drift.sources import ChunkSource

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# kinds whose values are numbers (bool as 0 and 1, as numpy has it)
NUMBERS = ("int", "uint", "float", "bool")


def kind_of(dtype: Any) -> str:
    """The dtype as Evidently's type inference reads it (`dtype.name`: uint8 and nullable Int64 are not ints)."""
    name = dtype.name
    for prefix in ("int", "uint", "float", "datetime"):
        if name.startswith(prefix):
            return prefix
    if name == "object":
        return "object"
    if name in ("string", "str"):
        return "string"
    if name in ("bool", "category"):
        return name
    return "unknown"


class _Types:
    """The dtype pandas gives the whole column. Within a table, the chunks' dtypes combine as pandas' parser
    combines its blocks (as Series concatenate); across tables, as `pd.concat` of frames combines them, where a
    table without a value in the column (or without the column) does not count. Tracked on representative rows
    (the first value and the first missing one of each table), not on the values."""

    _NO_PART = object()

    def __init__(self) -> None:
        self.part: Any = self._NO_PART
        self.rows: pd.Series | None = None
        self.has_value = self.has_na = False
        self.tables: dict[tuple[str, bool, bool], pd.Series] = {}

    def add(self, part: Any, series: pd.Series, na: np.ndarray, dtype_rows: pd.Series | None) -> None:
        import numpy as np
        import pandas as pd

        if part is not self.part and part != self.part:
            self.close()
            self.part = part
        picked = []
        if len(series):
            present = ~na
            if present.any():
                picked.append(int(np.argmax(present)))
                self.has_value = True
            if na.any():
                picked.append(int(np.argmax(na)))
                self.has_na = True
        rows = series.iloc[picked] if picked else dtype_rows
        if rows is None or not len(rows):
            return
        if self.rows is None:
            self.rows = rows
        elif self.rows.dtype != rows.dtype or _adds(self.rows.isna().to_numpy(), rows.isna().to_numpy()):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                if isinstance(self.rows.dtype, pd.CategoricalDtype) and isinstance(
                    rows.dtype, pd.CategoricalDtype
                ):
                    # within a table, categories unite (pandas' parser, a whole Parquet table): still categories
                    united = pd.api.types.union_categoricals([self.rows.array, rows.array])
                    merged = pd.Series(united)
                else:
                    merged = pd.concat([self.rows, rows], ignore_index=True)
            self.rows = _representative(merged)

    def missing(self, part: Any) -> None:
        """A table without the column: missing values for pandas, with a dtype that does not count."""
        import numpy as np
        import pandas as pd

        self.close()
        self.part = part
        self.tables[("float64", False, True)] = pd.Series([np.nan])

    def close(self) -> None:
        rows = self.rows
        if rows is not None and (self.has_value or self.has_na):
            na = rows.isna().to_numpy()
            keep = [
                i
                for i, missing in enumerate(na)
                if (missing and self.has_na) or (not missing and self.has_value)
            ]
            if keep:
                self.tables[(str(rows.dtype), self.has_value, self.has_na)] = rows.iloc[keep]
        self.rows, self.has_value, self.has_na = None, False, False

    def dtype(self) -> Any:
        import pandas as pd

        self.close()
        tables = list(self.tables.values())
        if not tables:
            return pd.Series([], dtype=float).dtype
        if len(tables) == 1:
            return tables[0].dtype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandas 2 leaves out all-missing tables: so do we
            frames = [pd.DataFrame({"c": rows.reset_index(drop=True)}) for rows in tables]
            return pd.concat(frames, ignore_index=True)["c"].dtype


def _adds(held: np.ndarray, new: np.ndarray) -> bool:
    """Whether new rows bring a missing value or a value present that the rows held lack."""
    return bool((new.any() and not held.any()) or ((~new).any() and held.all()))


def _representative(rows: pd.Series) -> pd.Series:
    na = rows.isna().to_numpy()
    picked = [i for i in (int(na.argmin()), int(na.argmax())) if i < len(rows)]
    return rows.iloc[sorted(set(picked))]


class ColumnProfile:
    """Everything the tests need about one column of one data set, in bounded memory."""

    def __init__(self, name: str, hold_limit: int) -> None:
        self.name = name
        self.types = _Types()
        self.dtype: Any = None  # the concatenated column's dtype, once the pass is over
        self.kinds_seen: set[str] = set()
        self.present = 0  # values that are not missing, +-inf included (pandas' count)
        self.infinite = {math.inf: 0, -math.inf: 0}
        self.has_na = False  # any missing value in the concatenated column
        self.counts = Counts()
        self.sketch: Sketch | None = None  # distinct values beyond the cap, estimated (object columns)
        self.unhashable = False  # values pandas cannot count (lists, dicts)
        self.text_ends: list[bool] = []  # is the first / last value present a str (Evidently checks both)
        # numbers: the finite values of int, float and bool chunks
        self.moments = Moments()
        self.held = Held(hold_limit)
        self.histogram: Histogram | None = None
        self.ladder: Ladder | None = None

    @property
    def kind(self) -> str:
        return "null" if self.dtype is None else kind_of(self.dtype)

    @property
    def float32(self) -> bool:
        return self.dtype is not None and self.dtype.name == "float32"

    @property
    def infinities(self) -> int:
        return self.infinite[math.inf] + self.infinite[-math.inf]

    @property
    def cleaned(self) -> int:
        """Values left when Evidently drops missing values and +-inf."""
        return self.present - self.infinities

    @property
    def finite(self) -> int:
        return self.moments.count

    def distinct_estimate(self) -> int:
        """Distinct values present: exact within the cap, estimated beyond (to size passes), never above count."""
        if self.counts.distinct is not None:
            return self.counts.distinct
        if self.sketch is None:
            return self.present
        return min(self.present, self.sketch.estimate(self.present) + accumulators.MAX_CATEGORIES)

    def add(self, series: pd.Series, part: Any = None, dtype_rows: pd.Series | None = None) -> None:
        import numpy as np

        kind = kind_of(series.dtype)
        if kind in NUMBERS:
            raw = series.to_numpy()
            na = np.isnan(raw) if kind == "float" else np.zeros(len(raw), dtype=bool)
            self.types.add(part, series, na, dtype_rows)
            self._add_numbers(kind, raw[~na] if kind == "float" else raw, bool(na.any()))
            return
        na = series.isna().to_numpy()
        self.types.add(part, series, na, dtype_rows)
        missing = bool(na.any())
        self.has_na = self.has_na or missing
        present = series[~na] if missing else series
        if present.empty:
            return
        self.kinds_seen.add(kind)
        self.present += len(present)
        try:
            self._count(kind, present)
        except TypeError:  # lists, dicts: values pandas cannot count, and Evidently cannot either
            self.unhashable = True
            self.counts.overflow, self.counts.values, self.sketch = True, {}, None
        last_is_text = isinstance(present.iloc[-1], str)
        if not self.text_ends:
            self.text_ends = [isinstance(present.iloc[0], str), last_is_text]
        self.text_ends[1] = last_is_text

    def _count(self, kind: str, present: pd.Series) -> None:
        if self.unhashable:
            return
        if not self.counts.overflow:
            # categories count in category order; Evidently meets values in order of appearance
            values = present.astype(object) if kind == "category" else present
            counts = values.value_counts(sort=False, dropna=True)
            keys = counts.index.tolist()
            self.counts.add(keys, counts.tolist())
            for key, n in zip(keys, counts.tolist(), strict=True):
                if n and isinstance(key, float) and math.isinf(key):
                    self.infinite[key] += n
        elif kind == "object":
            for value in (math.inf, -math.inf):
                self.infinite[value] += int(present.isin([value]).sum())
        if self.counts.overflow:
            if self.sketch is None:
                self.sketch = Sketch()
            self.sketch.add(present)

    def _add_numbers(self, kind: str, values: np.ndarray, had_na: bool) -> None:
        import numpy as np
        import pandas as pd

        self.has_na = self.has_na or had_na
        if not len(values):
            return
        self.kinds_seen.add(kind)
        self.present += len(values)
        finite = values
        if kind == "float":
            infinite = ~np.isfinite(values)
            if infinite.any():
                positive = int(np.count_nonzero(values[infinite] > 0))
                self.infinite[math.inf] += positive
                self.infinite[-math.inf] += int(infinite.sum()) - positive
                finite = values[~infinite]
        if not self.counts.overflow:
            counts = pd.Series(values, copy=False).value_counts(sort=False)
            self.counts.add(counts.index.tolist(), counts.tolist())
        if not self.text_ends:
            self.text_ends = [False, False]
        self.text_ends[1] = False
        if not len(finite):
            return
        as_float = finite.astype(np.float64, copy=False)
        self.moments.add(as_float)
        self.held.add(finite, self.moments.count)
        for accumulator in (self.histogram, self.ladder):
            if accumulator is not None:
                accumulator.add(as_float)

    def missing(self, part: Any) -> None:
        """Rows of a table that lacks the column."""
        self.has_na = True
        self.types.missing(part)

    def finish(self) -> None:
        self.dtype = self.types.dtype()
        if self.kind == "float" and self.kinds_seen & {"int", "uint", "bool"}:
            self.counts.as_floats()
        if self.histogram is not None:
            self.histogram.finish()


@dataclass
class DataSet:
    sample: RowSample
    rows: int = 0
    names: dict[str, None] = field(default_factory=dict)  # every column seen, in order
    columns: dict[str, ColumnProfile] = field(default_factory=dict)  # those profiled


def scan(
    source: ChunkSource,
    *,
    wanted: Callable[[str], bool],
    read: Sequence[str] | None,
    hold_limit: int,
    sample: RowSample,
    prepare: Callable[[ColumnProfile], None],
) -> DataSet:
    data = DataSet(sample)
    for chunk in source.chunks(read):
        part = chunk.attrs.get("part")
        dtype_rows = chunk.attrs.get("dtypes")
        profiled = []
        for name in chunk.columns:
            data.names.setdefault(name, None)
            if not wanted(name):
                continue
            profile = data.columns.get(name)
            if profile is None:
                profile = data.columns[name] = ColumnProfile(name, hold_limit)
                prepare(profile)
                if data.rows:
                    profile.missing(None)  # the rows before the column first appears
            rows = dtype_rows[name] if dtype_rows is not None and name in dtype_rows else None
            profile.add(chunk[name], part, rows)
            profiled.append(name)
        if len(chunk) and len(profiled) < len(data.columns):
            for name, profile in data.columns.items():
                if name not in chunk.columns:
                    profile.missing(part)
        data.rows += len(chunk)
        data.sample.add(chunk[profiled])
    for profile in data.columns.values():
        profile.finish()
    return data


def numbers(series: pd.Series) -> np.ndarray:
    """The finite values of a chunk of numbers (bool as they are), in their own dtype."""
    import numpy as np

    values = series.to_numpy()
    return values[np.isfinite(values)] if values.dtype.kind == "f" else values


def load_column(source: ChunkSource, name: str, dtype: Any) -> pd.Series:
    """The whole column's finite values in the concatenated column's dtype: the last resort for a distance on
    the threshold."""
    import numpy as np
    import pandas as pd

    parts = []
    for chunk in source.chunks([name]):
        if name in chunk.columns and kind_of(chunk[name].dtype) in NUMBERS:
            parts.append(numbers(chunk[name]))
    values = np.concatenate(parts) if parts else np.empty(0)
    return pd.Series(values.astype(dtype, copy=False), name=name)


def load_present(source: ChunkSource, name: str) -> list[Any]:
    """The whole column's values present, as Python objects: the last resort for a categorical score on the
    threshold."""
    values: list[Any] = []
    for chunk in source.chunks([name]):
        if name in chunk.columns:
            series = chunk[name]
            values.extend(series[series.notna()].tolist())
    return values
