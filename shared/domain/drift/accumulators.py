"""What a column's values are reduced to, chunk by chunk, in bounded memory: value counts, moments, the values
themselves while they are few, histograms with exact tails, counts against a small reference, and a uniform
sample of rows."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Bounds of this implementation.
MAX_CATEGORIES = 10_000  # distinct values counted per column in the first pass; beyond, more passes do
BINS = 4096  # histogram bins per numerical column, at quantiles of the reference's first values
EDGE_VALUES = 8192  # reference values buffered (per column) to place those bins
TAIL_VALUES = 32_768  # values of the two outer bins kept, to integrate heavy tails exactly


class Counts:
    """Value counts of the values present (+-inf included, as pandas counts them), in order of first appearance
    (the order Evidently's sets and dicts meet them), up to a cap. The column's profile counts +-inf apart."""

    def __init__(self, cap: int | None = None) -> None:
        self.values: dict[Any, int] = {}
        self.cap = MAX_CATEGORIES if cap is None else cap
        self.overflow = False

    def add(self, keys: list[Any], counts: list[int]) -> None:
        if self.overflow:
            return
        if len(keys) > self.cap:
            self._overflow()
            return
        values = self.values
        for key, n in zip(keys, counts, strict=True):
            if n:
                values[key] = values.get(key, 0) + n
        if len(values) > self.cap:
            self._overflow()

    def _overflow(self) -> None:
        self.overflow, self.values = True, {}

    @property
    def distinct(self) -> int | None:
        """Distinct values present (+-inf included, as `nunique` counts them); None beyond the cap."""
        return None if self.overflow else len(self.values)

    def view(self, infinite: bool, infinities: int) -> dict[Any, int] | None:
        """The counts with or without +-inf (Evidently drops them, but for its data-set count of a side without
        missing values; `infinities`: how many the column holds); None beyond the cap."""
        if self.overflow:
            return None
        if infinite or not infinities:
            return self.values
        return {k: n for k, n in self.values.items() if not is_infinite(k)}

    def as_floats(self) -> None:
        """The integers counted become floats, as they do when pandas turns the column into floats."""
        if self.overflow:
            return
        merged: dict[Any, int] = {}
        for key, n in self.values.items():
            key = float(key) if isinstance(key, int) and not isinstance(key, bool) else key
            merged[key] = merged.get(key, 0) + n
        self.values = merged


def is_infinite(value: Any) -> bool:
    return isinstance(value, float) and math.isinf(value)


class Moments:
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


class Held:
    """All values while there are at most `limit` of them: small samples are tested exactly as Evidently does.
    `total` counts what the limit applies to (values, or values and infinities)."""

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
    left edge for the others (no cancellation). Without edges, the first values are buffered to place them.
    The values of the two outer bins are kept too (up to TAIL_VALUES), so that heavy tails integrate exactly."""

    def __init__(self, edges: np.ndarray | None = None) -> None:
        self.edges = edges
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self.tails: list[list[np.ndarray] | None] = [[], []]  # values below e0, values from e_last on
        self._tail_count = [0, 0]
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
        self._keep_tail(0, ordered[: starts[1]].copy())  # copies: a view would keep the whole chunk alive
        self._keep_tail(1, ordered[starts[-1] :].copy())

    def _keep_tail(self, side: int, values: np.ndarray) -> None:
        kept = self.tails[side]
        if kept is None or not len(values):
            return
        self._tail_count[side] += len(values)
        if self._tail_count[side] > TAIL_VALUES:
            self.tails[side] = None
        else:
            kept.append(values)

    def tail(self, side: int) -> np.ndarray | None:
        """The sorted values of the first (0) or last (1) bin, None if there were too many to keep."""
        import numpy as np

        kept = self.tails[side]
        return None if kept is None else np.sort(np.concatenate(kept)) if kept else np.empty(0)

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
