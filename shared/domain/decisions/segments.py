"""Gates per segment of the holdout, over the `slices` and `fairness` blocks of an `evaluation.json`.

A slice fails when the challenger is significantly worse there than the champion by more than `tolerance` of
the champion's metric on that slice: the whole bootstrap interval of the difference lies beyond that margin on
the bad side. Slices too small to judge, or where the metric cannot be measured, never pass silently: the
verdict names them. Fairness fails when the challenger's demographic parity or equalized odds difference
exceeds `limit`; without a limit it is recorded, not gated.
"""

from __future__ import annotations

import math
from typing import Any

MEASURED = "measured"
LISTED = 5  # slices named in a verdict's reason; the rest are counted


def verdict(
    gate: str, passed: bool, value: float | None, threshold: float | None, reason: str
) -> dict[str, Any]:
    """A gate's verdict, in the fields of `gates.Verdict`."""
    return {"gate": gate, "passed": passed, "value": value, "threshold": threshold, "reason": reason}


def judged(entry: dict[str, Any], tolerance: float | None, greater_is_better: bool) -> str:
    """A slice's verdict: "worse" (significantly, beyond the tolerance), "ok", or why it was not judged."""
    if entry.get("verdict") != MEASURED:
        return str(entry.get("verdict"))
    margin = _margin(entry, tolerance)
    low, high = _number(entry.get("low")), _number(entry.get("high"))
    if margin is None or low is None or high is None:
        return "not measurable"  # no interval (every resample undefined): nothing to judge it by
    worse = high < -margin if greater_is_better else low > margin
    return "worse" if worse else "ok"


def slices(evaluation: dict[str, Any], tolerance: float | None, greater_is_better: bool) -> list[dict]:
    found = evaluation.get("slices")
    if not isinstance(found, list) or not found:
        return []
    worse, unjudged, count = [], [], 0
    for entry in (e for e in found if isinstance(e, dict)):
        name = f"{entry.get('column')}={entry.get('value')}"
        outcome = judged(entry, tolerance, greater_is_better)
        if outcome not in ("worse", "ok"):
            unjudged.append(f"{name} ({outcome}, {_int(entry.get('rows'))} rows)")
            continue
        count += 1
        if outcome == "worse":
            worse.append(
                f"{name} ({entry.get('metric')} {_fmt(entry.get('challenger'))} vs "
                f"{_fmt(entry.get('champion'))}, difference in [{_fmt(entry.get('low'))}, "
                f"{_fmt(entry.get('high'))}])"
            )
    gate = "no slice significantly worse" + (
        f" by more than {tolerance:.0%}" if tolerance is not None else ""
    )
    skipped = f"; not judged: {_listed(unjudged)}" if unjudged else ""
    if tolerance is None:
        reason = f"slices recorded, not gated (MLOPS_SLICE_TOLERANCE off): {count} judged{skipped}"
        return [verdict(gate, True, float(len(worse)), None, reason)]
    if worse:
        reason = f"challenger significantly worse on {len(worse)} slice(s): {_listed(worse)}{skipped}"
        return [verdict(gate, False, float(len(worse)), tolerance, reason)]
    reason = f"{count} slice(s) judged, none significantly worse{skipped}"
    return [verdict(gate, True, 0.0, tolerance, reason)]


def fairness(evaluation: dict[str, Any], limit: float | None) -> list[dict]:
    found = evaluation.get("fairness")
    if not isinstance(found, dict):
        return []
    column = found.get("column")
    challenger = found.get("challenger")
    if not isinstance(challenger, dict):
        why = found.get("reason") or "no groups large enough to compare"
        return [
            verdict(f"fairness across {column}", limit is None, None, limit, f"fairness not measured: {why}")
        ]
    verdicts = []
    for metric in ("demographic_parity_difference", "equalized_odds_difference"):
        value = _number(challenger.get(metric))
        gate = f"{metric} across {column}" + (f" <= {limit:g}" if limit is not None else "")
        shown = "unknown" if value is None else f"{value:.3f}"
        if limit is None:
            verdicts.append(verdict(gate, True, value, None, f"{metric} {shown}, recorded, not gated"))
        elif value is None:
            verdicts.append(
                verdict(gate, False, None, limit, f"{metric} across {column} could not be measured")
            )
        else:
            passed = value <= limit
            reason = f"{metric} across {column} {shown} {'within' if passed else 'exceeds'} {limit:g}"
            verdicts.append(verdict(gate, passed, value, limit, reason))
    return verdicts


def _margin(entry: dict[str, Any], tolerance: float | None) -> float | None:
    champion = _number(entry.get("champion"))
    if champion is None:
        return None
    return abs(champion) * (tolerance or 0.0)


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _fmt(value: Any) -> str:
    number = _number(value)
    return "?" if number is None else f"{number:.4g}"
