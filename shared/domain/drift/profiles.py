"""Data drift: the verdicts of Evidently's `DataDriftPreset` (default settings) on the full data, computed chunk
by chunk in bounded memory, and Evidently's HTML report drawn on a bounded sample but carrying those verdicts.

Why not simply run the preset: it needs both data sets in memory as pandas frames and runs every column's test
more than once (ValueDrift, DriftedColumnsCount and the rendered table each do); on 1,000,000 rows x 10 columns
that is over a minute and about 1 GB, more than a Function should spend on a timer.

How the verdicts stay Evidently's. The preset's defaults (`_get_default_stattest` in
evidently/legacy/calculations/stattests/registry.py) pick a test per column from the *current* data's inferred
type (evidently/core/datasets.py `infer_column_type`: floats are numerical, ints with at most 10 distinct values
categorical, object columns with more distinct values than half their rows text) and from the values left after
dropping NaN and +-inf:
- reference of at most 1000 values: K-S (drift when p <= 0.05) for numerical columns with more than 5 distinct
  values; chi-square (p < 0.05) for 3-5 distinct numerical values or categorical columns with more than 2
  categories; Z-test (p < 0.05) for two or fewer;
- larger reference: normed Wasserstein distance (>= 0.1) for numerical columns with more than 5 distinct values,
  Jensen-Shannon distance over value counts (>= 0.1) for the rest;
- the data set drifts when the share of drifted columns is at least `drift_share`.
All tests but Wasserstein are functions of value counts (K-S: of counts against the at most 1000 reference
values), which we accumulate exactly and hand to the same scipy functions in the same order. The normed
Wasserstein distance needs the reference's standard deviation (streaming moments) and the integral of
|F_ref - F_cur|: histograms with per-bin counts and value sums give that integral exactly on every bin where
F_ref - F_cur keeps its sign and tight bounds on the others. When the bounds straddle the threshold, the
uncertain bins are split and counted again; only a distance within 1e-9 of the threshold, where floating point
decides, loads that one column whole and lets Evidently's own function decide.

Where we differ, on purpose: columns whose type differs between the data sets, or that one of them lacks, are
schema drift and get no test (Evidently would fail or compare apples with strings); text columns (Evidently's
text-content drift trains a classifier) and categorical columns with more than MAX_CATEGORIES values are listed
as not checked, and the drift share is over the columns tested.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)

# Evidently's defaults, from evidently/legacy/calculations/stattests and evidently/core/datasets.py.
SMALL_REFERENCE = 1000  # reference values up to which the p-value tests are used
FEW_VALUES = 5  # numerical columns with at most this many distinct values are tested on counts
INTEGER_CATEGORIES = 10  # int columns with at most this many distinct values are categorical
KS_EXACT_LIMIT = 10_000  # scipy's ks_2samp computes exact p-values up to this many values per sample

# Bounds of this implementation.
MAX_CATEGORIES = 10_000  # distinct values counted per column; beyond this a column cannot be tested on counts
BINS = 4096  # histogram bins per numerical column, at quantiles of the reference's first values
EDGE_VALUES = 8192  # reference values buffered (per column) to place those bins
SPLIT = 64  # sub-bins an uncertain bin is split into
MAX_SPLIT_BINS = 256  # uncertain bins split per round
MAX_REFINEMENTS = 6
MARGIN = 1e-9  # relative distance from a threshold within which floating point rounding decides

DEFAULT_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class StatTest:
    name: str  # Evidently's registered name
    display: str  # Evidently's display name, as its report shows it
    threshold: float
    p_value: bool  # p-values drift below the threshold, distances at or above it


TESTS = {
    "ks": StatTest("ks", "K-S p_value", 0.05, True),
    "chisquare": StatTest("chisquare", "chi-square p_value", 0.05, True),
    "z": StatTest("z", "Z-test p_value", 0.05, True),
    "wasserstein": StatTest("wasserstein", "Wasserstein distance (normed)", 0.1, False),
    "jensenshannon": StatTest("jensenshannon", "Jensen-Shannon distance", 0.1, False),
}


# --- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    column_type: str  # numerical or categorical, as Evidently infers it from the current data
    stattest: str
    score: float
    threshold: float
    drifted: bool
    reference_values: int  # values tested (NaN and infinities left out, as Evidently does)
    current_values: int

    @property
    def method(self) -> str:
        return TESTS[self.stattest].display

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.column_type,
            "method": self.method,
            "stattest": self.stattest,
            "value": self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reference_values": self.reference_values,
            "current_values": self.current_values,
        }


@dataclass(frozen=True)
class SchemaDrift:
    missing: tuple[str, ...] = ()  # expected columns the current data lacks
    new: tuple[str, ...] = ()  # current columns the reference does not have
    changed: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # column -> (reference type, current type)

    @property
    def drifted(self) -> bool:
        return bool(self.missing or self.new or self.changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "missing": list(self.missing),
            "new": list(self.new),
            "changed": {name: {"reference": r, "current": c} for name, (r, c) in self.changed.items()},
        }


@dataclass(frozen=True)
class DriftResult:
    drifted: bool  # Evidently's dataset-level verdict over the tested columns
    drift_share: float
    threshold: float
    drifted_columns: tuple[str, ...]
    columns: dict[str, ColumnDrift]
    schema: SchemaDrift
    not_checked: dict[str, str]  # column -> why it has no verdict
    reference_rows: int
    current_rows: int
    current_columns: tuple[str, ...] = ()  # every column the current data has, tested or not
    reference_sample: Any = field(repr=False, default=None)  # bounded samples of rows, for the HTML report
    current_sample: Any = field(repr=False, default=None)

    def summary(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drift_share": self.drift_share,
            "threshold": self.threshold,
            "drifted_columns": list(self.drifted_columns),
            "number_of_columns": len(self.columns),
            "columns": {name: verdict.as_dict() for name, verdict in self.columns.items()},
            "schema_drift": self.schema.as_dict(),
            "not_checked": dict(self.not_checked),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "sample_rows": {
                "reference": 0 if self.reference_sample is None else len(self.reference_sample),
                "current": 0 if self.current_sample is None else len(self.current_sample),
            },
        }


# --- sources of rows ------------------------------------------------------------------------------------------


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


# --- accumulators ---------------------------------------------------------------------------------------------


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


class _Histogram:
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


class _Ladder:
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


class _ColumnProfile:
    """Everything the tests need about one column of one data set, in bounded memory."""

    def __init__(self, name: str, hold_limit: int) -> None:
        self.name = name
        self.kind = "null"
        self.values = 0  # non-null values (numerical: finite values)
        self.counts = _Counts()
        self.moments = _Moments()
        self.held = _Held(hold_limit)
        self.text_ends: list[bool] = []  # is the first / last non-null value a str (Evidently checks both)
        self.histogram: _Histogram | None = None
        self.ladder: _Ladder | None = None

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


class _RowSample:
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
class _DataSet:
    sample: _RowSample
    rows: int = 0
    names: dict[str, None] = field(default_factory=dict)  # every column seen, in order
    columns: dict[str, _ColumnProfile] = field(default_factory=dict)  # those profiled


def _scan(
    source: ChunkSource,
    *,
    wanted: Callable[[str], bool],
    read: Sequence[str] | None,
    hold_limit: int,
    sample: _RowSample,
    prepare: Callable[[_ColumnProfile], None],
) -> _DataSet:
    data = _DataSet(sample)
    for chunk in source.chunks(read):
        profiled = []
        for name in chunk.columns:
            data.names.setdefault(name, None)
            if not wanted(name):
                continue
            profile = data.columns.get(name)
            if profile is None:
                profile = data.columns[name] = _ColumnProfile(name, hold_limit)
                prepare(profile)
            profile.add(chunk[name])
            profiled.append(name)
        data.rows += len(chunk)
        data.sample.add(chunk[profiled])
    for profile in data.columns.values():
        if profile.histogram is not None:
            profile.histogram.finish()
    return data


def _histograms(source: ChunkSource, edges: dict[str, np.ndarray]) -> dict[str, _Histogram]:
    """One more pass over a source, counting only the given columns into the given bins."""
    import numpy as np

    histograms = {name: _Histogram(e) for name, e in edges.items()}
    for chunk in source.chunks(list(edges)):
        for name in chunk.columns:
            if name in histograms:
                values = chunk[name].to_numpy(dtype=np.float64)
                histograms[name].add(values[np.isfinite(values)])
    return histograms


def _load_column(source: ChunkSource, name: str) -> pd.Series:
    """The whole column's finite values: the last resort for a distance on the threshold."""
    import numpy as np
    import pandas as pd

    parts = []
    for chunk in source.chunks([name]):
        if name in chunk.columns:
            values = chunk[name].to_numpy(dtype=np.float64)
            parts.append(values[np.isfinite(values)])
    return pd.Series(np.concatenate(parts) if parts else np.empty(0), name=name)


# --- the tests, on counts -------------------------------------------------------------------------------------


def _keys(reference: dict[Any, int], current: dict[Any, int]) -> list[Any]:
    """`get_unique_not_nan_values_list_from_series`: a set built in the same order, so iterated the same way."""
    return list(set(reference) | set(current))


def chi_square(reference: dict[Any, int], current: dict[Any, int]) -> float:
    from scipy.stats import chisquare

    keys = _keys(reference, current)
    k_norm = sum(current.values()) / sum(reference.values())
    expected = [reference.get(key, 0) * k_norm for key in keys]
    observed = [current.get(key, 0) for key in keys]
    return float(chisquare(observed, expected)[1])


def z_test(reference: dict[Any, int], current: dict[Any, int]) -> float:
    import numpy as np
    from scipy.stats import norm

    if len(reference) == 1 and len(current) == 1 and next(iter(reference)) == next(iter(current)):
        return 1.0
    first = sorted(_keys(reference, current))[0]
    n1, n2 = sum(reference.values()), sum(current.values())
    # the share of values other than the first key, as Evidently's 0/1 recoding counts it
    p1 = float(n1 - reference.get(first, 0)) / n1
    p2 = float(n2 - current.get(first, 0)) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(np.abs(z))))


def jensen_shannon(reference: dict[Any, int], current: dict[Any, int]) -> float:
    import numpy as np
    from scipy.spatial import distance

    keys = _keys(reference, current)
    n1, n2 = sum(reference.values()), sum(current.values())
    p = np.array([reference.get(key, 0) / n1 for key in keys])
    q = np.array([current.get(key, 0) / n2 for key in keys])
    return float(distance.jensenshannon(p, q, None))


def ks_on_ladder(reference: np.ndarray, ladder: _Ladder, n2: int) -> float:
    """scipy's two-sided `ks_2samp` p-value (asymptotic: the current data has over 10,000 values), from counts.

    The statistic is the largest |cdf1 - cdf2| over all data points; between two reference values cdf1 is
    constant, so only each reference value and the last current value below it matter. Each difference is
    computed with the same operations as scipy's, so the statistic is the same float."""
    import numpy as np
    from scipy import stats

    n1 = len(reference)
    points = ladder.points
    ref_le = np.searchsorted(np.sort(reference), points, side="right")
    cur_le = np.cumsum(ladder.upto)[: len(points)]
    cur_lt = cur_le - ladder.equal
    before = np.concatenate(([0], cur_le[:-1]))
    ref_before = np.concatenate(([0], ref_le[:-1]))
    between = cur_lt > before  # current values strictly between two reference values
    differences = np.concatenate((ref_le / n1 - cur_le / n2, (ref_before / n1 - cur_lt / n2)[between]))
    min_s = np.clip(-differences.min(), 0, 1)
    max_s = differences.max()
    d = min_s if min_s > max_s else max_s
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))


@dataclass(frozen=True)
class WassersteinBounds:
    low: float  # bounds on the (unnormed) distance
    high: float
    estimate: float  # within the bounds: the CDFs taken as linear inside uncertain bins (only for display)
    uncertain_bins: np.ndarray  # bins whose share of the distance is not known exactly, worst first
    left: np.ndarray  # bin boundaries used (finite)
    right: np.ndarray


def wasserstein_bounds(
    reference: _Histogram, current: _Histogram, n1: int, n2: int, lowest: float, highest: float
) -> WassersteinBounds:
    """Bounds on the integral of |F_ref - F_cur| from two histograms on the same bins.

    For a bin [a, b), the integral of an empirical CDF F is F(a-) * (b - a) + sum over its values of (b - x) / n,
    so the integral of D = F_ref - F_cur is exact; it equals that of |D| when D keeps its sign on the bin, which
    is certain when F_ref(a-) - F_cur(b-) >= 0 or F_ref(b-) - F_cur(a-) <= 0. Otherwise |integral of D| is a
    lower bound and the smallest of three upper bounds is used."""
    import numpy as np

    edges = reference.edges
    assert edges is not None and current.edges is not None
    left = np.concatenate(([lowest], edges))
    right = np.concatenate((edges, [highest]))
    width = np.maximum(right - left, 0.0)

    def tail(histogram: _Histogram, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        # share of values in each bin, F at its left and right, and the integral of (b - x) over its values / n
        share = histogram.count / n
        before = np.concatenate(([0], np.cumsum(histogram.count)[:-1])) / n
        through = np.cumsum(histogram.count) / n
        beyond = histogram.count * width - histogram.distance
        beyond[0] = histogram.distance[0]  # the first bin's anchor is its right edge already
        return share, before, through, np.clip(beyond, 0.0, histogram.count * width) / n

    share_r, before_r, through_r, tail_r = tail(reference, n1)
    share_c, before_c, through_c, tail_c = tail(current, n2)
    d_left, d_right = before_r - before_c, through_r - through_c
    integral = d_left * width + tail_r - tail_c
    lowest_d, highest_d = before_r - through_c, through_r - before_c
    exact = (lowest_d >= 0) | (highest_d <= 0)
    low = np.abs(integral)
    high = np.minimum.reduce(
        [
            np.abs(d_left) * width + tail_r + tail_c,
            np.abs(d_right) * width + (share_r * width - tail_r) + (share_c * width - tail_c),
            width * np.maximum(np.abs(lowest_d), np.abs(highest_d)),
        ]
    )
    high = np.where(exact, low, np.maximum(high, low))
    gap = high - low
    uncertain = np.flatnonzero(gap > 0)
    uncertain = uncertain[np.argsort(-gap[uncertain], kind="stable")]
    magnitude = np.abs(d_left) + np.abs(d_right)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = width * (d_left**2 + d_right**2) / (2 * magnitude)
    linear = np.where(d_left * d_right < 0, crossing, width * np.abs(d_left + d_right) / 2)
    estimate = np.clip(np.nan_to_num(linear), low, high)
    return WassersteinBounds(
        float(low.sum()), float(high.sum()), float(estimate.sum()), uncertain, left, right
    )


def _split_edges(edges: np.ndarray, bounds: WassersteinBounds) -> np.ndarray:
    """The edges, plus SPLIT sub-bins in each of the bins carrying most of the uncertainty."""
    import numpy as np

    chosen = bounds.uncertain_bins[:MAX_SPLIT_BINS]
    extra = [np.linspace(bounds.left[i], bounds.right[i], SPLIT + 1) for i in chosen]
    points = np.concatenate([edges, *extra]) if extra else edges
    return np.unique(points[np.isfinite(points)])


# --- deciding ---------------------------------------------------------------------------------------------------


class _Undecided(Exception):
    """The Wasserstein bounds straddle the threshold: count again on finer bins."""


def _verdict(column: str, column_type: str, test: str, score: float, ref: int, cur: int) -> ColumnDrift:
    spec = TESTS[test]
    if test == "ks":
        drifted = score <= spec.threshold
    elif spec.p_value:
        drifted = score < spec.threshold
    else:
        drifted = score >= spec.threshold
    return ColumnDrift(column, column_type, test, score, spec.threshold, bool(drifted), ref, cur)


def _decide(name: str, column_type: str, ref: _ColumnProfile, cur: _ColumnProfile) -> ColumnDrift:
    """Evidently's choice of test, and the test, for one column. Raises _Undecided or ValueError (untestable)."""
    n1, n2 = ref.values, cur.values
    counts_known = not (ref.counts.overflow or cur.counts.overflow)
    distinct = len(set(ref.counts.values) | set(cur.counts.values)) if counts_known else None
    few = distinct is not None and distinct <= FEW_VALUES
    if column_type == "categorical" and not counts_known:
        raise ValueError(f"more than {MAX_CATEGORIES} distinct values: cannot be tested as categorical")
    on_counts = column_type == "categorical" or few
    if on_counts:
        r, c = ref.counts.values, cur.counts.values
        if n1 <= SMALL_REFERENCE:
            assert distinct is not None
            if distinct > 2:
                return _verdict(name, column_type, "chisquare", chi_square(r, c), n1, n2)
            return _verdict(name, column_type, "z", z_test(r, c), n1, n2)
        return _verdict(name, column_type, "jensenshannon", jensen_shannon(r, c), n1, n2)
    if n1 <= SMALL_REFERENCE:
        return _verdict(name, column_type, "ks", _ks(ref, cur), n1, n2)
    bounds = _bounds(ref, cur)
    norm = max(ref.moments.std, 0.001)
    threshold = TESTS["wasserstein"].threshold
    if bounds.low / norm >= threshold * (1 + MARGIN) or bounds.high / norm < threshold * (1 - MARGIN):
        return _verdict(name, column_type, "wasserstein", bounds.estimate / norm, n1, n2)
    raise _Undecided(name)


def _ks(ref: _ColumnProfile, cur: _ColumnProfile) -> float:
    from scipy.stats import ks_2samp

    reference = ref.held.values()
    if cur.held.complete:
        return float(ks_2samp(reference, cur.held.values())[1])
    if cur.ladder is None:
        raise ValueError("no counts against the reference values")
    return ks_on_ladder(reference, cur.ladder, cur.values)


def _bounds(ref: _ColumnProfile, cur: _ColumnProfile) -> WassersteinBounds:
    if ref.histogram is None or cur.histogram is None or ref.histogram.edges is None:
        raise ValueError("no histogram")
    lowest = min(ref.moments.min, cur.moments.min)
    highest = max(ref.moments.max, cur.moments.max)
    return wasserstein_bounds(ref.histogram, cur.histogram, ref.values, cur.values, lowest, highest)


def _wasserstein_exact(reference: pd.Series, current: pd.Series) -> float:
    """Evidently's own function, on the whole column: only for distances within rounding of the threshold."""
    from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
    from evidently.legacy.core import ColumnType

    return float(_wasserstein_distance_norm(reference, current, ColumnType.Numerical, 0.1)[0])


# --- the check ------------------------------------------------------------------------------------------------


def check(
    reference: ChunkSource,
    current: ChunkSource,
    *,
    columns: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    drift_share: float = 0.5,
    sample_rows: int = 5000,
    seed: int = 42,
) -> DriftResult:
    """Compare `current` with `reference` column by column, as DataDriftPreset(drift_share) would on the two
    data sets concatenated. `columns`: the columns to compare (default: the reference's, but `ignore`).

    Memory: per column a few counters, at most MAX_CATEGORIES value counts, BINS histogram bins and (for small
    references) the reference's 1000 and the current's 10,000 values; plus `sample_rows` rows of each data set
    for the report and one chunk of each source at a time. Passes: one over each source, and more over the
    columns whose Wasserstein distance lies within the bins' uncertainty of the threshold."""
    import numpy as np

    ignored = set(ignore)
    configured = list(columns) if columns else None
    chosen = set(configured or ())
    wanted_reference = (lambda c: c in chosen) if configured else (lambda c: c not in ignored)

    def with_histogram(profile: _ColumnProfile) -> None:
        profile.histogram = _Histogram()  # used if the column is numerical with over 1000 values

    ref = _scan(
        reference,
        wanted=wanted_reference,
        read=configured,
        hold_limit=SMALL_REFERENCE,
        sample=_RowSample(sample_rows, seed),
        prepare=with_histogram,
    )
    expected = configured or [c for c in ref.names if c not in ignored]

    def against_reference(profile: _ColumnProfile) -> None:
        reference_profile = ref.columns.get(profile.name)
        if reference_profile is None or not reference_profile.numeric:
            return
        histogram = reference_profile.histogram
        if histogram is not None and histogram.edges is not None:
            profile.histogram = _Histogram(histogram.edges)
        if reference_profile.held.complete:
            profile.ladder = _Ladder(np.unique(reference_profile.held.values().astype(np.float64)))

    expected_set = set(expected)
    cur = _scan(
        current,
        wanted=lambda c: c in expected_set,
        read=configured + [c for c in ignore if c not in expected_set] if configured else None,
        hold_limit=KS_EXACT_LIMIT,
        sample=_RowSample(sample_rows, seed + 1),
        prepare=against_reference,
    )

    schema, tested, not_checked = _compare_schemas(ref, cur, expected, ignored, detect_new=configured is None)
    verdicts: dict[str, ColumnDrift] = {}
    undecided: dict[str, str] = {}
    for name, column_type in tested.items():
        try:
            verdicts[name] = _decide(name, column_type, ref.columns[name], cur.columns[name])
        except _Undecided:
            undecided[name] = column_type
        except ValueError as error:
            not_checked[name] = str(error)
    verdicts.update(_resolve(undecided, ref, cur, reference, current))
    verdicts = {name: verdicts[name] for name in tested if name in verdicts}

    drifted_columns = tuple(name for name, verdict in verdicts.items() if verdict.drifted)
    share = len(drifted_columns) / len(verdicts) if verdicts else 0.0
    return DriftResult(
        drifted=bool(verdicts) and share >= drift_share,
        drift_share=share,
        threshold=drift_share,
        drifted_columns=drifted_columns,
        columns=verdicts,
        schema=schema,
        not_checked=not_checked,
        reference_rows=ref.rows,
        current_rows=cur.rows,
        current_columns=tuple(cur.names),
        reference_sample=ref.sample.frame,
        current_sample=cur.sample.frame,
    )


def _compare_schemas(
    ref: _DataSet, cur: _DataSet, expected: list[str], ignored: set[str], detect_new: bool
) -> tuple[SchemaDrift, dict[str, str], dict[str, str]]:
    """Columns that vanished, appeared or changed type; and the rest with the type Evidently would test them as."""
    missing = tuple(name for name in expected if name not in cur.names)
    new = tuple(n for n in cur.names if n not in ref.names and n not in ignored) if detect_new else ()
    changed: dict[str, tuple[str, str]] = {}
    tested: dict[str, str] = {}
    not_checked: dict[str, str] = {}
    for name in expected:
        if name in missing:
            continue
        r, c = ref.columns.get(name), cur.columns.get(name)
        if r is None or not r.values:
            not_checked[name] = "no values in the reference"
            continue
        if c is None or not c.values:
            not_checked[name] = "no values in the current data"
            continue
        r_kind, c_kind = r.final_kind(ref.rows), c.final_kind(cur.rows)
        r_group, c_group = SCHEMA_GROUPS.get(r_kind, "unknown"), SCHEMA_GROUPS.get(c_kind, "unknown")
        if r_group != c_group:
            changed[name] = (r_group, c_group)
            continue
        column_type = c.evidently_type(cur.rows)
        if column_type in ("numerical", "categorical"):
            tested[name] = column_type
        else:
            not_checked[name] = f"{column_type} column: no numerical or categorical drift test applies"
    return SchemaDrift(missing, new, changed), tested, not_checked


def _resolve(
    undecided: dict[str, str], ref: _DataSet, cur: _DataSet, reference: ChunkSource, current: ChunkSource
) -> dict[str, ColumnDrift]:
    """Refine the bins of columns whose distance could lie on either side of the threshold; as a last resort
    load the column."""
    verdicts: dict[str, ColumnDrift] = {}
    threshold = TESTS["wasserstein"].threshold
    refinable = dict(undecided)
    for _ in range(MAX_REFINEMENTS):
        if not refinable:
            break
        edges = {}
        for name in refinable:
            r, c = ref.columns[name], cur.columns[name]
            assert r.histogram is not None and r.histogram.edges is not None
            edges[name] = _split_edges(r.histogram.edges, _bounds(r, c))
        log.info("drift: refining Wasserstein bins", extra={"columns": sorted(refinable)})
        ref_histograms, cur_histograms = _histograms(reference, edges), _histograms(current, edges)
        for name in list(refinable):
            r, c = ref.columns[name], cur.columns[name]
            r.histogram, c.histogram = ref_histograms[name], cur_histograms[name]
            try:
                verdicts[name] = _decide(name, undecided[name], r, c)
            except _Undecided:
                bounds = _bounds(r, c)
                if bounds.high - bounds.low <= MARGIN * threshold * max(r.moments.std, 0.001):
                    del refinable[name]  # as tight as floating point allows: only exact computation can tell
                continue
            del undecided[name], refinable[name]
    for name, column_type in undecided.items():
        log.warning("drift: distance on the threshold, loading the column", extra={"column": name})
        r_values, c_values = _load_column(reference, name), _load_column(current, name)
        score = _wasserstein_exact(r_values, c_values)
        verdicts[name] = _verdict(name, column_type, "wasserstein", score, len(r_values), len(c_values))
    return verdicts


# --- Evidently: the report ------------------------------------------------------------------------------------

_FULL_DATA: ContextVar[dict[str, ColumnDrift]] = ContextVar("mlops_drift_full_data")


def _full_data_stattest(test: str) -> Any:
    """An Evidently stat test that answers with the verdict computed on the full data (looked up by column), so
    a report drawn on a sample shows the full data's scores and verdicts."""
    from evidently.legacy.calculations.stattests.registry import (
        StatTest as EvidentlyStatTest,
    )
    from evidently.legacy.calculations.stattests.registry import (
        register_stattest,
    )
    from evidently.legacy.core import ColumnType

    spec = TESTS[test]

    def answer(
        reference_data: Any, current_data: Any, feature_type: Any, threshold: float
    ) -> tuple[float, bool]:
        verdict = _FULL_DATA.get()[reference_data.name]
        return verdict.score, verdict.drifted

    stattest = EvidentlyStatTest(
        name=f"mlops_full_data_{test}",
        display_name=f"{spec.display} (full data)",
        allowed_feature_types=[ColumnType.Numerical, ColumnType.Categorical, ColumnType.Text],
        default_threshold=spec.threshold,
    )
    register_stattest(stattest, default_impl=answer)
    return stattest


def render_html(result: DriftResult) -> str:
    """Evidently's DataDriftPreset report on the samples, with every column's full-data score and verdict."""
    import pandas as pd

    reference, current = result.reference_sample, result.current_sample
    shown = [
        name
        for name in result.columns
        if reference is not None
        and current is not None
        and name in reference.columns
        and name in current.columns
        and reference[name].notna().any()
        and current[name].notna().any()
    ]
    if not shown:
        return _plain_html(result)
    from evidently import Report
    from evidently.presets import DataDriftPreset

    methods = {name: _full_data_stattest(result.columns[name].stattest) for name in shown}
    thresholds = {name: result.columns[name].threshold for name in shown}
    token = _FULL_DATA.set(result.columns)
    try:
        snapshot = Report(
            [
                DataDriftPreset(
                    columns=shown,
                    drift_share=result.threshold,
                    per_column_method=methods,
                    per_column_threshold=thresholds,
                )
            ]
        ).run(reference_data=pd.DataFrame(reference[shown]), current_data=pd.DataFrame(current[shown]))
        html = snapshot.get_html_str(as_iframe=False)
    finally:
        _FULL_DATA.reset(token)
    note = (
        f"<p>Verdicts and scores: all {result.reference_rows} reference and {result.current_rows} current rows. "
        f"Distributions: samples of {len(reference)} and {len(current)} rows.</p>"
    )
    return html.replace("<body>", f"<body>{note}", 1)


def _plain_html(result: DriftResult) -> str:
    import html

    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(v.method)}</td><td>{v.score:.4g}</td>"
        f"<td>{'drift' if v.drifted else 'no drift'}</td></tr>"
        for n, v in result.columns.items()
    )
    return (
        "<html><body><h1>Data drift</h1>"
        f"<p>drift share {result.drift_share:.2f}, threshold {result.threshold:.2f}</p>"
        f"<table>{rows}</table><pre>{html.escape(str(result.schema.as_dict()))}</pre></body></html>"
    )
