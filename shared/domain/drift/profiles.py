"""What one pass over a data set learns about each column, in bounded memory: the dtype as Evidently reads it,
value counts, moments, the values themselves while they are few, histograms for the Wasserstein distance,
counts against a small reference for K-S; and a uniform sample of rows for the report."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.domain.drift.sources import ChunkSource

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Evidently's default, from evidently/core/datasets.py (`infer_column_type`).
INTEGER_CATEGORIES = 10  # int columns with at most this many distinct values are categorical

# Bounds of this implementation.
MAX_CATEGORIES = 10_000  # distinct values counted per column; beyond this a column cannot be tested on counts
BINS = 4096  # histogram bins per numerical column, at quantiles of the reference's first values
EDGE_VALUES = 8192  # reference values buffered (per column) to place those bins


def _kind(dtype: Any) -> str:
    """The dtype as Evidently's type inference reads it (`dtype.name` prefixes, so uint8 and Int64 are unknown)."""
    name = dtype.name
    if name.startswith("int"):
        return "int"
    if name.startswith("float"):
        return "float"
    if name in ("object", "string", "str"):
        return "object"
    if name in ("bool", "category"):
        return name
    if name.startswith("datetime"):
        return "datetime"
    return "unknown"


def _merge_kinds(a: str, b: str) -> str:
    """The dtype pandas gives the concatenation of two chunks (chunks without values do not count)."""
    if a == "null" or a == b:
        return b
    if b == "null":
        return a
    if {a, b} == {"int", "float"}:
        return "float"
    return "mixed"


SCHEMA_GROUPS = {
    "int": "numeric",
    "float": "numeric",
    "object": "text",
    "category": "text",
    "bool": "bool",
    "datetime": "datetime",
}


class _Counts:
    """Value counts in order of first appearance (the order Evidently's sets and dicts meet them), up to a cap."""

    def __init__(self, cap: int = MAX_CATEGORIES) -> None:
        self.values: dict[Any, int] = {}
        self.cap = cap
        self.overflow = False

    def add(self, series: pd.Series) -> None:
        if self.overflow or series.empty:
            return
        counts = series.value_counts(sort=False, dropna=True)
        if len(counts) > self.cap:
            self._overflow()
            return
        values = self.values
        for key, n in zip(counts.index.tolist(), counts.tolist(), strict=True):
            if n:
                values[key] = values.get(key, 0) + n
        if len(values) > self.cap:
            self._overflow()

    def _overflow(self) -> None:
        self.overflow, self.values = True, {}

    @property
    def distinct(self) -> int | None:
        """None when there were more distinct values than the cap."""
        return None if self.overflow else len(self.values)


class _Moments:
    """Count, mean, sum of squared deviations (merged per chunk, Chan et al.), minimum and maximum."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.min, self.max = math.inf, -math.inf

    def add(self, values: np.ndarray) -> None:
        n = len(values)
        if not n:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))

    @property
    def std(self) -> float:
        """Population standard deviation, as `np.std` computes it."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0


class _Held:
    """All values while there are at most `limit` of them: small samples are tested exactly as Evidently does."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[np.ndarray] | None = []

    def add(self, values: np.ndarray, total: int) -> None:
        if self.parts is None:
            return
        if total > self.limit:
            self.parts = None
        elif len(values):
            self.parts.append(values)

    @property
    def complete(self) -> bool:
        return self.parts is not None

    def values(self) -> np.ndarray:
        import numpy as np

        assert self.parts is not None
        return np.concatenate(self.parts) if self.parts else np.empty(0)


class Histogram:
    """Per bin: count and sum of distances to an anchor, so that the integral of the empirical CDF over every
    bin is exact. Bins: (-inf, e0), [e0, e1), ..., [e_last, inf); the anchor is e0 for the first bin and the
    left edge for the others (no cancellation). Without edges, the first values are buffered to place them."""

    def __init__(self, edges: np.ndarray | None = None) -> None:
        self.edges = edges
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        if edges is not None:
            self._allocate(edges)

    def _allocate(self, edges: np.ndarray) -> None:
        import numpy as np

        self.edges = edges
        self.count = np.zeros(len(edges) + 1, dtype=np.int64)
        self.distance = np.zeros(len(edges) + 1)
        self._anchors = np.concatenate((edges[:1], edges))

    def add(self, values: np.ndarray) -> None:
        import numpy as np

        if not len(values):
            return
        if self.edges is None:
            self._buffer.append(values)
            self._buffered += len(values)
            if self._buffered >= EDGE_VALUES:
                self.finish()
            return
        # sorting the chunk and locating the few edges in it is twice as fast as locating every value
        ordered = np.sort(values)
        starts = np.concatenate(([0], np.searchsorted(ordered, self.edges, side="left")))
        counts = np.diff(np.concatenate((starts, [len(ordered)])))
        self.count += counts
        distances = np.abs(ordered - np.repeat(self._anchors, counts))
        filled = counts > 0
        self.distance[filled] += np.add.reduceat(distances, starts[filled])

    def finish(self) -> None:
        """Place the edges if values are still buffered (a column with few values)."""
        if self.edges is not None or not self._buffer:
            return
        import numpy as np

        buffered = np.concatenate(self._buffer)
        self._buffer, self._buffered = [], 0
        self._allocate(quantile_edges(buffered))
        self.add(buffered)


def quantile_edges(values: np.ndarray, bins: int | None = None) -> np.ndarray:
    """Distinct order statistics at evenly spaced ranks: bins of about equal mass, edges that are data values."""
    import numpy as np

    ordered = np.sort(values)
    ranks = np.linspace(0, len(ordered) - 1, min(bins or BINS, len(ordered))).round().astype(np.int64)
    return np.unique(ordered[ranks])


class Ladder:
    """Counts of current values against the sorted distinct reference values: what the K-S statistic needs when
    the reference is small and the current data is not."""

    def __init__(self, points: np.ndarray) -> None:
        import numpy as np

        self.points = points
        self.upto = np.zeros(len(points) + 1, dtype=np.int64)  # values in (p[j-1], p[j]]; last: above p[-1]
        self.equal = np.zeros(len(points), dtype=np.int64)  # values == p[j]

    def add(self, values: np.ndarray) -> None:
        import numpy as np

        if not len(values) or not len(self.points):
            return
        at = np.searchsorted(self.points, values, side="left")
        self.upto += np.bincount(at, minlength=len(self.upto))
        inside = at < len(self.points)
        hits = at[inside][values[inside] == self.points[at[inside]]]
        self.equal += np.bincount(hits, minlength=len(self.equal))


class ColumnProfile:
    """Everything the tests need about one column of one data set, in bounded memory."""

    def __init__(self, name: str, hold_limit: int) -> None:
        self.name = name
        self.kind = "null"
        self.values = 0  # non-null values (numerical: finite values)
        self.counts = _Counts()
        self.moments = _Moments()
        self.held = _Held(hold_limit)
        self.text_ends: list[bool] = []  # is the first / last non-null value a str (Evidently checks both)
        self.histogram: Histogram | None = None
        self.ladder: Ladder | None = None

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "float")

    def add(self, series: pd.Series) -> None:
        import numpy as np
        import pandas as pd

        kind = _kind(series.dtype)
        if kind in ("int", "float"):
            values = series.to_numpy()
            if kind == "float":
                values = values[np.isfinite(values)]
            if not len(values):
                return
            self.kind = _merge_kinds(self.kind, kind)
            self.values += len(values)
            self.counts.add(pd.Series(values, copy=False))
            as_float = values.astype(np.float64, copy=False)
            self.moments.add(as_float)
            self.held.add(values, self.values)
            for accumulator in (self.histogram, self.ladder):
                if accumulator is not None:
                    accumulator.add(as_float)
            return
        present = series.dropna()
        if present.empty:
            return
        self.kind = _merge_kinds(self.kind, kind)
        self.values += len(present)
        self.counts.add(present)
        if kind == "object":
            last_is_text = isinstance(present.iloc[-1], str)
            if not self.text_ends:
                self.text_ends = [isinstance(present.iloc[0], str), last_is_text]
            self.text_ends[1] = last_is_text

    def final_kind(self, rows: int) -> str:
        """The dtype of the whole column, concatenated: missing values turn ints into floats and bools into
        objects, as pandas does."""
        missing = rows > self.values
        if self.kind == "int" and missing:
            return "float"
        if self.kind == "bool" and missing:
            return "unknown"
        return self.kind

    def evidently_type(self, rows: int) -> str:
        """`infer_column_type` of Evidently, on the whole (current) column."""
        kind = self.final_kind(rows)
        distinct = self.counts.distinct
        if kind == "float":
            return "numerical"
        if kind == "int":
            return "categorical" if distinct is not None and distinct <= INTEGER_CATEGORIES else "numerical"
        if kind == "object":
            if not (self.text_ends and all(self.text_ends)):
                return "unknown"
            if distinct is None:  # more distinct values than the cap: text unless the column is huge
                return "text" if self.values * 0.5 < MAX_CATEGORIES else "undecidable"
            return "text" if distinct > self.values * 0.5 else "categorical"
        if kind in ("bool", "category"):
            return "categorical"
        if kind == "datetime":
            return "datetime"
        return "unknown"


class RowSample:
    """A uniform sample of rows without replacement (the rows with the smallest random keys), for the report."""

    def __init__(self, size: int, seed: int) -> None:
        import numpy as np

        self.size = size
        self.random = np.random.default_rng(seed)
        self.frame: pd.DataFrame | None = None
        self.keys: np.ndarray | None = None

    def add(self, chunk: pd.DataFrame) -> None:
        import numpy as np
        import pandas as pd

        keys = self.random.random(len(chunk))
        if self.size <= 0 or not len(chunk):
            return
        if self.frame is not None and self.keys is not None and len(self.frame) >= self.size:
            entering = keys < self.keys.max()
            chunk, keys = chunk[entering], keys[entering]
            if not len(chunk):
                return
        if self.frame is None or self.keys is None:
            frame, all_keys = chunk, keys
        else:
            frame = pd.concat([self.frame, chunk], ignore_index=True)
            all_keys = np.concatenate([self.keys, keys])
        if len(frame) > self.size:
            keep = np.sort(np.argpartition(all_keys, self.size)[: self.size])
            frame, all_keys = frame.iloc[keep].reset_index(drop=True), all_keys[keep]
        self.frame, self.keys = frame, all_keys


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
        profiled = []
        for name in chunk.columns:
            data.names.setdefault(name, None)
            if not wanted(name):
                continue
            profile = data.columns.get(name)
            if profile is None:
                profile = data.columns[name] = ColumnProfile(name, hold_limit)
                prepare(profile)
            profile.add(chunk[name])
            profiled.append(name)
        data.rows += len(chunk)
        data.sample.add(chunk[profiled])
    for profile in data.columns.values():
        if profile.histogram is not None:
            profile.histogram.finish()
    return data


def count_histograms(source: ChunkSource, edges: dict[str, np.ndarray]) -> dict[str, Histogram]:
    """One more pass over a source, counting only the given columns into the given bins."""
    import numpy as np

    histograms = {name: Histogram(e) for name, e in edges.items()}
    for chunk in source.chunks(list(edges)):
        for name in chunk.columns:
            if name in histograms:
                values = chunk[name].to_numpy(dtype=np.float64)
                histograms[name].add(values[np.isfinite(values)])
    return histograms


def load_column(source: ChunkSource, name: str) -> pd.Series:
    """The whole column's finite values: the last resort for a distance on the threshold."""
    import numpy as np
    import pandas as pd

    parts = []
    for chunk in source.chunks([name]):
        if name in chunk.columns:
            values = chunk[name].to_numpy(dtype=np.float64)
            parts.append(values[np.isfinite(values)])
    return pd.Series(np.concatenate(parts) if parts else np.empty(0), name=name)
