"""Evidently's drift tests, computed from what the profiles hold instead of the columns: chi-square, Z-test and
Jensen-Shannon on value counts, K-S on counts against a small reference, bounds on the Wasserstein distance
from histograms; and the normed Wasserstein distance on a whole column, for a distance on the threshold. Each
repeats the operations of evidently/legacy/calculations/stattests in the same order, so the scores are the
same floats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shared.domain.drift.profiles import Histogram, Ladder

# Evidently norms the Wasserstein distance by the reference's population std, but never by less than this.
STD_FLOOR = 0.001


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


def ks_on_ladder(reference: np.ndarray, ladder: Ladder, n2: int) -> float:
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
    reference: Histogram, current: Histogram, n1: int, n2: int, lowest: float, highest: float
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


def wasserstein_exact(reference: pd.Series, current: pd.Series) -> float:
    """The normed Wasserstein distance on whole columns, for distances within rounding of the threshold: what
    Evidently's `_wasserstein_distance_norm` (legacy/calculations/stattests/wasserstein_distance_norm.py, 0.7)
    computes, with the same calls on the same Series, so the same float (a test compares the two)."""
    import numpy as np
    from scipy import stats

    norm = max(float(np.std(reference)), STD_FLOOR)
    return float(stats.wasserstein_distance(reference, current) / norm)
