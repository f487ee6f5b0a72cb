"""The Wasserstein distance, the integral of |F_ref - F_cur|, from histograms: exact on every bin where
F_ref - F_cur keeps its sign, and on every bin whose values are at hand (the two tails, kept during the pass,
and the bins a refinement pass collects); bounded on the others. A refinement collects the values of the
uncertain bins that fit a budget and splits the rest into finer bins, in one more pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.domain.drift.accumulators import Histogram
from shared.domain.drift.profiles import NUMBERS, kind_of, numbers
from shared.domain.drift.sources import ChunkSource

if TYPE_CHECKING:
    import numpy as np

SPLIT = 64  # sub-bins an uncertain bin too full to collect is split into
MAX_SPLIT_BINS = 256  # such bins split per round
COLLECT_VALUES = 1 << 20  # values (both data sets) collected per column and round


@dataclass(frozen=True)
class Bounds:
    low: float  # bounds on the (unnormed) distance
    high: float
    estimate: float  # within the bounds: the CDFs taken as linear inside uncertain bins
    uncertain_bins: np.ndarray  # bins whose share of the distance is not known exactly, worst first
    left: np.ndarray  # bin boundaries used (finite)
    right: np.ndarray


@dataclass
class Pair:
    """A numerical column's two histograms on the same edges, and the exact integrals known on some bins
    (keyed by their boundaries, so that they survive finer edges elsewhere)."""

    reference: Histogram
    current: Histogram
    n1: int
    n2: int
    lowest: float
    highest: float
    exact: dict[tuple[float, float], float] = field(default_factory=dict)

    def bounds(self) -> Bounds:
        return bounds(self)


def integral(
    a: float, b: float, before: tuple[int, int], ref: np.ndarray, cur: np.ndarray, n: tuple[int, int]
) -> float:
    """The exact integral of |F_ref - F_cur| over [a, b), given every value of both data sets in it (sorted) and
    how many of each lie below a."""
    import numpy as np

    points = np.sort(np.concatenate(([a], ref, cur)))
    f_ref = (before[0] + np.searchsorted(ref, points, side="right")) / n[0]
    f_cur = (before[1] + np.searchsorted(cur, points, side="right")) / n[1]
    widths = np.diff(np.concatenate((points, [b])))
    return float(np.sum(np.abs(f_ref - f_cur) * np.maximum(widths, 0.0)))


def bounds(pair: Pair) -> Bounds:
    """Bounds on the integral of |F_ref - F_cur| from two histograms on the same bins.

    For a bin [a, b), the integral of an empirical CDF F is F(a-) * (b - a) + sum over its values of (b - x) / n,
    so the integral of D = F_ref - F_cur is exact; it equals that of |D| when D keeps its sign on the bin, which
    is certain when F_ref(a-) - F_cur(b-) >= 0 or F_ref(b-) - F_cur(a-) <= 0. Otherwise |integral of D| is a
    lower bound and the smallest of three upper bounds is used; bins whose values are known are exact."""
    import numpy as np

    reference, current, n1, n2 = pair.reference, pair.current, pair.n1, pair.n2
    edges = reference.edges
    assert edges is not None and current.edges is not None
    left = np.concatenate(([pair.lowest], edges))
    right = np.concatenate((edges, [pair.highest]))
    width = np.maximum(right - left, 0.0)

    def tail(histogram: Histogram, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    integral_d = d_left * width + tail_r - tail_c
    lowest_d, highest_d = before_r - through_c, through_r - before_c
    certain = (lowest_d >= 0) | (highest_d <= 0)
    low = np.abs(integral_d)
    high = np.minimum.reduce(
        [
            np.abs(d_left) * width + tail_r + tail_c,
            np.abs(d_right) * width + (share_r * width - tail_r) + (share_c * width - tail_c),
            width * np.maximum(np.abs(lowest_d), np.abs(highest_d)),
        ]
    )
    high = np.where(certain, low, np.maximum(high, low))
    for index, value in _known(pair, left, right, reference.count, current.count).items():
        low[index] = high[index] = value
    gap = high - low
    uncertain = np.flatnonzero(gap > 0)
    uncertain = uncertain[np.argsort(-gap[uncertain], kind="stable")]
    magnitude = np.abs(d_left) + np.abs(d_right)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = width * (d_left**2 + d_right**2) / (2 * magnitude)
    linear = np.where(d_left * d_right < 0, crossing, width * np.abs(d_left + d_right) / 2)
    estimate = np.clip(np.nan_to_num(linear), low, high)
    return Bounds(float(low.sum()), float(high.sum()), float(estimate.sum()), uncertain, left, right)


def _known(
    pair: Pair, left: np.ndarray, right: np.ndarray, count_r: np.ndarray, count_c: np.ndarray
) -> dict[int, float]:
    """Bins whose integral is exact: the tails, when both data sets kept theirs, and the bins collected."""
    import numpy as np

    known = {}
    last = len(left) - 1
    before_r = np.concatenate(([0], np.cumsum(count_r)[:-1]))
    before_c = np.concatenate(([0], np.cumsum(count_c)[:-1]))
    n = (pair.n1, pair.n2)
    for side, index in ((0, 0), (1, last)):
        ref, cur = pair.reference.tail(side), pair.current.tail(side)
        if ref is not None and cur is not None:
            before = (int(before_r[index]), int(before_c[index]))
            known[index] = integral(float(left[index]), float(right[index]), before, ref, cur, n)
    if pair.exact:
        for index in range(1, last):
            value = pair.exact.get((float(left[index]), float(right[index])))
            if value is not None:
                known[index] = value
    return known


# --- refinement ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """One round of refinement for a column: bins whose values to collect, and the edges to count on."""

    collect: list[
        tuple[float, float, tuple[int, int]]
    ]  # [a, b) and the values of each data set below a, sorted
    edges: np.ndarray | None  # finer edges, or None to keep the histograms


def plan(pair: Pair, found: Bounds) -> Plan:
    """Collect the uncertain bins (worst first) while their values fit COLLECT_VALUES; split the others."""
    import numpy as np

    counts = pair.reference.count + pair.current.count
    before_r = np.concatenate(([0], np.cumsum(pair.reference.count)[:-1]))
    before_c = np.concatenate(([0], np.cumsum(pair.current.count)[:-1]))
    last = len(found.left) - 1
    collect, split, budget = [], [], COLLECT_VALUES
    for index in found.uncertain_bins:
        if index in (0, last):  # tails too long to keep: finer edges only
            split.append(index)
        elif counts[index] <= budget:
            budget -= int(counts[index])
            before = (int(before_r[index]), int(before_c[index]))
            collect.append((float(found.left[index]), float(found.right[index]), before))
        else:
            split.append(index)
    edges = None
    if split:
        edges = pair.reference.edges
        assert edges is not None
        extra = [np.linspace(found.left[i], found.right[i], SPLIT + 1) for i in split[:MAX_SPLIT_BINS]]
        points = np.concatenate([edges, *extra])
        edges = np.unique(points[np.isfinite(points)])  # the collected bins stay bins: their edges are kept
    return Plan(sorted(collect), edges)  # in order along the line, where the pass looks them up


def refine(
    reference: ChunkSource, current: ChunkSource, pairs: dict[str, Pair], plans: dict[str, Plan]
) -> None:
    """One more pass over both sources: finer histograms where planned, and the values of the bins to collect,
    whose exact integrals join the pairs."""
    import numpy as np

    collected: dict[str, list[list[list[np.ndarray]]]] = {}
    for side, source in enumerate((reference, current)):
        histograms = {name: Histogram(p.edges) for name, p in plans.items() if p.edges is not None}
        wanted = {name: p for name, p in plans.items() if p.collect}
        lefts = {name: np.array([c[0] for c in p.collect]) for name, p in wanted.items()}
        rights = {name: np.array([c[1] for c in p.collect]) for name, p in wanted.items()}
        for name, p in wanted.items():
            collected.setdefault(name, [[[] for _ in p.collect], [[] for _ in p.collect]])
        for chunk in source.chunks(list(plans)):
            for name in chunk.columns:
                if name not in plans or kind_of(chunk[name].dtype) not in NUMBERS:
                    continue
                values = numbers(chunk[name]).astype(np.float64, copy=False)
                if name in histograms:
                    histograms[name].add(values)
                if name in wanted:
                    at = np.searchsorted(lefts[name], values, side="right") - 1
                    inside = (at >= 0) & (values < rights[name][np.maximum(at, 0)])
                    found, where = values[inside], at[inside]
                    if not len(found):
                        continue
                    order = np.argsort(where, kind="stable")
                    bins, starts = np.unique(where[order], return_index=True)
                    for index, piece in zip(bins, np.split(found[order], starts[1:]), strict=True):
                        collected[name][side][index].append(piece)
        for name, histogram in histograms.items():
            histogram.finish()
            if side == 0:
                pairs[name].reference = histogram
            else:
                pairs[name].current = histogram
    for name, sides in collected.items():
        pair = pairs[name]
        for index, (a, b, before) in enumerate(plans[name].collect):
            ref = np.sort(np.concatenate(sides[0][index])) if sides[0][index] else np.empty(0)
            cur = np.sort(np.concatenate(sides[1][index])) if sides[1][index] else np.empty(0)
            pair.exact[(a, b)] = integral(a, b, before, ref, cur, (pair.n1, pair.n2))
