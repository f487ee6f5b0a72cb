"""Evidently's drift tests, computed from what the profiles hold instead of the columns: chi-square, Z-test and
Jensen-Shannon on value counts, K-S on the values of a small reference (and on counts against them when the
current data is large), the norm of the Wasserstein distance; and what the tests give on +-inf, which
Evidently's data-set count keeps on a side without missing values. Each repeats the operations of
evidently/legacy/calculations/stattests in the same order, so the scores are the same floats. The Wasserstein
distance itself is in `wasserstein`, the text test in `text`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from shared.domain.drift.accumulators import Ladder

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
    "abs_text_content_drift": StatTest("abs_text_content_drift", "Absolute text content drift", 0.55, False),
    "perc_text_content_drift": StatTest(
        "perc_text_content_drift", "Percentile text content drift", 0.95, False
    ),
}
# Norms within this relative distance of ours are what pandas' two-pass variance can give on the same values.
STD_ROUNDING = 1e-10


def _keys(reference: dict[Any, int], current: dict[Any, int]) -> list[Any]:
    """`get_unique_not_nan_values_list_from_series`: a set built in the same order, so iterated the same way."""
    return list(set(reference) | set(current))


def chi_square(reference: dict[Any, int], current: dict[Any, int]) -> float:
    import numpy as np
    from scipy.stats import chisquare

    keys = _keys(reference, current)
    k_norm = sum(current.values()) / sum(reference.values())
    expected = [reference.get(key, 0) * k_norm for key in keys]
    observed = [current.get(key, 0) for key in keys]
    # A category the reference never had divides by zero: p is 0 (drifted), as in Evidently; no warning.
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(chisquare(observed, expected)[1])


def z_test(reference: dict[Any, int], current: dict[Any, int]) -> float:
    import numpy as np
    from scipy.stats import norm

    if len(reference) == 1 and len(current) == 1 and next(iter(reference)) == next(iter(current)):
        return 1.0
    try:
        first = sorted(_keys(reference, current))[0]
    except TypeError as error:  # Evidently sorts the values too, and its preset raises the same
        raise ValueError(
            f"Evidently's Z-test cannot order the values ({error}): its preset raises"
        ) from error
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


def ks_exact(reference: np.ndarray, current: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(reference, current)[1])


def with_infinities(values: np.ndarray, infinite: dict[float, int]) -> np.ndarray:
    """The values and the +-inf counted apart from them (the order does not matter to K-S: it sorts)."""
    import numpy as np

    if not any(infinite.values()):
        return values
    extra = [np.full(n, value) for value, n in infinite.items() if n]
    return np.concatenate([values.astype(np.float64, copy=False), *extra])


def ks_on_ladder(reference: np.ndarray, ladder: Ladder, n2: int, current_infinite: dict[float, int]) -> float:
    """scipy's two-sided `ks_2samp` p-value (asymptotic: the current data has over 10,000 values), from counts.

    The statistic is the largest |cdf1 - cdf2| over all data points; between two reference values cdf1 is
    constant, so only each reference value and the last current value below it matter. Each difference is
    computed with the same operations as scipy's, so the statistic is the same float. The reference may hold
    +-inf and the current +-inf counted apart (`current_infinite`): they extend the ladder at its ends."""
    import numpy as np
    from scipy import stats

    n1 = len(reference)
    points, upto, equal = _extended(ladder, reference, current_infinite)
    ref_le = np.searchsorted(np.sort(reference), points, side="right")
    cur_le = np.cumsum(upto)[: len(points)]
    cur_lt = cur_le - equal
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


def _extended(
    ladder: Ladder, reference: np.ndarray, infinite: dict[float, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    points, upto, equal = ladder.points, ladder.upto.copy(), ladder.equal.copy()
    below, above = infinite.get(-math.inf, 0), infinite.get(math.inf, 0)
    if np.isneginf(reference).any():
        points, upto, equal = (
            np.concatenate(([-np.inf], points)),
            np.concatenate(([below], upto)),
            np.concatenate(([below], equal)),
        )
    else:
        upto[0] += below
    if np.isposinf(reference).any():
        points = np.concatenate((points, [np.inf]))
        upto = np.concatenate((upto[:-1], [upto[-1] + above, 0]))
        equal = np.concatenate((equal, [above]))
    else:
        upto[-1] += above
    return points, upto, equal


def wasserstein_on_infinities(reference_infinite: int, current_infinite: dict[float, int]) -> float:
    """What Evidently's normed Wasserstein distance is when +-inf are kept: the reference's std is nan if it holds
    one (so is the distance); otherwise scipy integrates |F_ref - F_cur| over an infinite interval, inf, or over
    one between two equal infinities, nan (inf - inf)."""
    if reference_infinite:
        return math.nan
    if any(n >= 2 for n in current_infinite.values()):
        return math.nan
    return math.inf


def wasserstein_norm(count: int, m2: float, float32: bool) -> tuple[float, float]:
    """Bounds on Evidently's norm, max(np.std(reference), 0.001), from the streamed moments. np.std on a pandas
    Series is pandas' two-pass variance in float64; for float32 the variance is rounded to float32 (and so is
    its square root), so the bounds are a single float unless the variance lies on a float32 rounding edge."""
    import numpy as np

    if not count:
        return STD_FLOOR, STD_FLOOR
    if float32:
        variance = m2 / float(np.float32(count))
        low = float(np.sqrt(np.float32(variance * (1 - STD_ROUNDING))))
        high = float(np.sqrt(np.float32(variance * (1 + STD_ROUNDING))))
    else:
        std = math.sqrt(m2 / count)
        low, high = std * (1 - STD_ROUNDING), std * (1 + STD_ROUNDING)
    return max(low, STD_FLOOR), max(high, STD_FLOOR)


def wasserstein_exact(reference: Any, current: Any) -> float:
    """The normed Wasserstein distance on whole columns, for distances within rounding of the threshold: what
    Evidently's `_wasserstein_distance_norm` (legacy/calculations/stattests/wasserstein_distance_norm.py, 0.7)
    computes, with the same calls on the same Series, so the same float (a test compares the two)."""
    import numpy as np
    from scipy import stats

    norm = max(float(np.std(reference)), STD_FLOOR)
    return float(stats.wasserstein_distance(reference, current) / norm)
