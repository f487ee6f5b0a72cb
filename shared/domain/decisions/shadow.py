"""A shadow's evidence: how often it answers what production answered on the same requests, and the verdict.

A pair is one input row answered by production (live) and by the shadow (a mirrored copy). Classification
compares labels (the share of equal answers); regression the mean absolute difference, also relative to the mean
absolute production answer so one limit fits any target's scale. Answers that are not comparable (a dict with
no prediction, a list of the wrong length) count as `unreadable`, never as agreement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from shared.domain.decisions.release import Verdict

CLASSIFICATION = frozenset({"binary", "multiclass"})


def answer(output: Any, prediction_column: str = "") -> Any:
    """The prediction in one captured output row: the value itself, the one field of a record, or its
    prediction column; None when there is none to compare."""
    if isinstance(output, dict):
        if prediction_column and prediction_column in output:
            return output[prediction_column]
        return next(iter(output.values())) if len(output) == 1 else None
    if isinstance(output, list):
        return output[0] if len(output) == 1 else None
    return output


def compare(pairs: Iterable[tuple[Any, Any]], task: str) -> dict[str, Any]:
    """Agreement over (production answer, shadow answer) pairs."""
    paired = unreadable = equal = 0
    differences: list[float] = []
    magnitudes: list[float] = []
    for production, shadow in pairs:
        if production is None or shadow is None or isinstance(production, dict | list):
            unreadable += 1
            continue
        if task in CLASSIFICATION:
            paired += 1
            equal += _same_label(production, shadow)
            continue
        left, right = _number(production), _number(shadow)
        if left is None or right is None:
            unreadable += 1
            continue
        paired += 1
        differences.append(abs(left - right))
        magnitudes.append(abs(left))
    evidence: dict[str, Any] = {"pairs": paired, "unreadable": unreadable}
    if task in CLASSIFICATION:
        evidence["agreement"] = round(equal / paired, 6) if paired else None
    else:
        mean = sum(differences) / paired if paired else None
        scale = sum(magnitudes) / paired if paired else None
        evidence["mean_abs_difference"] = round(mean, 6) if mean is not None else None
        evidence["relative_difference"] = round(mean / scale, 6) if mean is not None and scale else None
    return evidence


def verdict(
    agreement: dict[str, Any],
    stats: dict[str, Any],
    healthy: bool,
    limits: dict[str, float | None],
) -> Verdict:
    """A shadow fails when unhealthy, when its mirrored copies err too often or are slow, or when it disagrees
    with production more than allowed. `limits`: max_error_rate, slo_ms, min_agreement, max_difference."""
    reasons = []
    if not healthy:
        reasons.append("the shadow deployment is unhealthy")
    if stats.get("requests") and stats.get("error_rate", 0.0) > (limits["max_error_rate"] or 0.0):
        reasons.append(
            f"mirrored error rate {stats['error_rate']:.1%} exceeds {limits['max_error_rate']:.1%}"
        )
    slo = limits["slo_ms"]
    if stats.get("requests") and slo is not None and (stats.get("p95_ms") or 0.0) > slo:
        reasons.append(f"mirrored p95 latency {stats['p95_ms']:.0f} ms exceeds the SLO of {slo:.0f} ms")
    share, floor = agreement.get("agreement"), limits["min_agreement"]
    if share is not None and floor is not None and share < floor:
        reasons.append(
            f"agrees with production on {share:.1%} of {agreement['pairs']} rows, below {floor:.1%}"
        )
    relative, ceiling = agreement.get("relative_difference"), limits["max_difference"]
    if relative is not None and ceiling is not None and relative > ceiling:
        reasons.append(
            f"mean absolute difference from production {agreement['mean_abs_difference']:.4g} "
            f"({relative:.1%} of production's mean absolute answer) exceeds {ceiling:.1%}"
        )
    return Verdict(not reasons, tuple(reasons), {**agreement, "mirror": stats, "healthy": healthy})


def _same_label(left: Any, right: Any) -> bool:
    if left == right:
        return True
    a, b = _number(left), _number(right)  # 1 and 1.0, "1" and 1: the same class as a JSON answer
    return a is not None and b is not None and a == b


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None
