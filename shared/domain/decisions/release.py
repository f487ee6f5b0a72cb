"""Release verdicts: pure functions over what a deployment answered and how it behaved."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)


def p95(latencies_ms: list[float]) -> float:
    if not latencies_ms:
        return 0.0
    ordered = sorted(latencies_ms)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def smoke(
    answers: list[Any],
    errors: list[str],
    expected: list[Any] | None,
    latencies_ms: list[float],
    tolerance: float,
    slo_ms: float,
    warmup: int = 0,
) -> Verdict:
    """Every request answered, each answer equal to the model's offline prediction, p95 within the SLO."""
    reasons = (
        [f"{len(errors)} of {len(errors) + len(answers)} requests failed: {errors[0]}"] if errors else []
    )
    mismatched = []
    if expected is not None and not errors:
        if len(answers) != len(expected):
            reasons.append(f"expected {len(expected)} predictions, got {len(answers)}")
        else:
            mismatched = [
                i
                for i, (got, want) in enumerate(zip(answers, expected, strict=True))
                if not _close(got, want, tolerance)
            ]
            if mismatched:
                i = mismatched[0]
                reasons.append(
                    f"{len(mismatched)} predictions differ from the model's offline predictions "
                    f"(row {i}: served {answers[i]!r}, offline {expected[i]!r})"
                )
    if any(isinstance(a, float) and not math.isfinite(a) for a in _flat(answers)):
        reasons.append("predictions contain NaN or infinity")
    latency = p95(latencies_ms)
    if latency > slo_ms:
        reasons.append(f"p95 latency {latency:.0f} ms exceeds the SLO of {slo_ms:.0f} ms")
    evidence = {
        "requests": len(answers) + len(errors),
        "errors": len(errors),
        "mismatches": len(mismatched),
        "p95_ms": round(latency, 1),
        "slo_ms": slo_ms,
        "warmup": warmup,  # requests sent first and not measured: a cold start says nothing of serving
    }
    return Verdict(not reasons, tuple(reasons), evidence)


def canary(stats: dict[str, Any], healthy: bool, max_error_rate: float, slo_ms: float) -> Verdict:
    """A canary degrades when its deployment is unhealthy, errs too often, or is slow."""
    reasons = []
    if not healthy:
        reasons.append("the canary deployment is unhealthy")
    if stats.get("requests") and stats.get("error_rate", 0.0) > max_error_rate:
        reasons.append(f"live error rate {stats['error_rate']:.1%} exceeds {max_error_rate:.1%}")
    if stats.get("requests") and (stats.get("p95_ms") or 0.0) > slo_ms:
        reasons.append(f"live p95 latency {stats['p95_ms']:.0f} ms exceeds the SLO of {slo_ms:.0f} ms")
    return Verdict(not reasons, tuple(reasons), {"stats": stats, "healthy": healthy})


def enough_evidence(stats: dict[str, Any] | None, min_requests: int) -> bool:
    """A canary is promoted on what it served: at least `min_requests` live requests in its bake period."""
    return stats is not None and int(stats.get("requests") or 0) >= min_requests


def newer(version: str, than: str) -> bool:
    """Whether model `version` is later than `than`: registry versions are counted up (numbers compare as
    numbers; other labels as text)."""
    if version.isdigit() and than.isdigit():
        return int(version) > int(than)
    return version > than


def _flat(values: list[Any]) -> list[Any]:
    return [v for value in values for v in (value if isinstance(value, list) else [value])]


def _close(got: Any, want: Any, tolerance: float) -> bool:
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_close(g, w, tolerance) for g, w in zip(got, want, strict=True))
    if isinstance(got, int | float) and isinstance(want, int | float):
        return math.isclose(float(got), float(want), rel_tol=tolerance, abs_tol=tolerance)
    return got == want
