"""Columns with more distinct values than the first pass counts (MAX_CATEGORIES): what Evidently decides on them
needs exact counts all the same, of the current data to type an object column (text when its distinct values
outnumber half its values) and of both to score a categorical one (Jensen-Shannon over every value).

Their values are held when they fit (`text.gather`); otherwise they are counted in parts: each pass over both
sources counts only the values whose hash falls in one part, so no pass holds more than PART_KEYS distinct
values, and the parts' Jensen-Shannon sums add up to the whole's (to rounding: a score that close to its
threshold is computed on the whole column as the last resort)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.domain.drift.accumulators import is_infinite
from shared.domain.drift.sources import ChunkSource

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PART_KEYS = 250_000  # distinct values counted per pass, all columns of the pass together
SKETCH = 1024  # hashes kept to estimate a column's distinct values (k minimum values)


class Sketch:
    """An estimate of the distinct values of a column beyond the cap (the k smallest of their 64-bit hashes),
    to size the parts: never a verdict's input."""

    def __init__(self) -> None:
        import numpy as np

        self.smallest = np.empty(0, dtype=np.uint64)

    def add(self, values: pd.Series) -> None:
        import numpy as np
        import pandas as pd

        hashes = pd.util.hash_array(values.to_numpy(dtype=object))
        if len(self.smallest) >= SKETCH:
            hashes = hashes[hashes < self.smallest[-1]]
        self.smallest = np.unique(np.concatenate((self.smallest, hashes)))[:SKETCH]

    def estimate(self, ceiling: int) -> int:
        if len(self.smallest) < SKETCH:
            return len(self.smallest)
        return min(ceiling, int((SKETCH - 1) / (float(self.smallest[-1]) / 2.0**64)))


def counts_of(values: pd.Series) -> dict[Any, int]:
    """Value counts in order of first appearance, as the first pass keeps them."""
    counts = values.value_counts(sort=False, dropna=True)
    return {k: n for k, n in zip(counts.index.tolist(), counts.tolist(), strict=True) if n}


def without_infinities(counts: dict[Any, int]) -> dict[Any, int]:
    return {k: n for k, n in counts.items() if not is_infinite(k)}


Views = tuple[bool, bool]  # whether the reference's and the current's +-inf are kept


@dataclass
class Parted:
    """What the parts add up to, for one column: the current's distinct values (+-inf included, as nunique counts
    them), and per view the distinct values of both and Jensen-Shannon's two sums."""

    current_distinct: int = 0
    union_distinct: dict[Views, int] = field(default_factory=dict)
    sums: dict[Views, list[float]] = field(default_factory=dict)

    def jensen_shannon(self, views: Views) -> float:
        left, right = self.sums[views]
        return math.sqrt((left + right) / 2.0)


def count_in_parts(
    reference: ChunkSource, current: ChunkSource, columns: dict[str, tuple[int, set[Views], Any, Any]]
) -> dict[str, Parted]:
    """columns: name -> (estimated distinct values, the views wanted, the reference's and current's profiles)."""
    parts = max(1, math.ceil(1.25 * sum(estimate for estimate, *_ in columns.values()) / PART_KEYS))
    results = {name: Parted() for name in columns}
    for part in range(parts):
        counted = [_count_part(source, list(columns), part, parts) for source in (reference, current)]
        for name, (_, views, ref_profile, cur_profile) in columns.items():
            ref, cur = counted[0].get(name, {}), counted[1].get(name, {})
            results[name].current_distinct += len(cur)
            for view in views:
                sizes = tuple(
                    p.present if infinite else p.cleaned
                    for p, infinite in zip((ref_profile, cur_profile), view, strict=True)
                )
                _add_part(results[name], view, ref, cur, sizes)  # type: ignore[arg-type]
    return results


def _count_part(source: ChunkSource, columns: list[str], part: int, parts: int) -> dict[str, dict[Any, int]]:
    counts: dict[str, dict[Any, int]] = {name: {} for name in columns}
    for chunk in source.chunks(columns):
        for name in chunk.columns:
            if name not in counts:
                continue
            chunk_counts = chunk[name].value_counts(sort=False, dropna=True)
            keys, numbers = chunk_counts.index.tolist(), chunk_counts.tolist()
            kept = counts[name]
            for key, n, bucket in zip(keys, numbers, _buckets(keys, parts), strict=True):
                if n and bucket == part:
                    kept[key] = kept.get(key, 0) + n
    return counts


def _buckets(keys: list[Any], parts: int) -> np.ndarray:
    """A part per value, equal for equal values (Python's hash: 1, 1.0 and True alike), spread by a multiplicative
    mix (integers hash to themselves)."""
    import numpy as np

    if parts == 1:
        return np.zeros(len(keys), dtype=np.int64)
    hashes = np.fromiter((hash(k) for k in keys), dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        mixed = (hashes * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return (mixed % np.uint64(parts)).astype(np.int64)


def _add_part(
    result: Parted, view: Views, ref: dict[Any, int], cur: dict[Any, int], n: tuple[int, int]
) -> None:
    import numpy as np
    from scipy.special import rel_entr

    r = ref if view[0] else without_infinities(ref)
    c = cur if view[1] else without_infinities(cur)
    keys = list(set(r) | set(c))
    result.union_distinct[view] = result.union_distinct.get(view, 0) + len(keys)
    sums = result.sums.setdefault(view, [0.0, 0.0])
    if not keys or not n[0] or not n[1]:
        return
    p = np.array([r.get(k, 0) / n[0] for k in keys])
    q = np.array([c.get(k, 0) / n[1] for k in keys])
    m = (p + q) / 2.0
    sums[0] += float(np.sum(rel_entr(p, m)))
    sums[1] += float(np.sum(rel_entr(q, m)))
