"""Quality gates: pure decisions over an `evaluation.json`, every verdict recorded with its numbers.

The first model (no champion) faces the absolute gates only. A challenger must also, against the champion on
the same holdout rows: improve the primary metric by more than `min_improvement` (relative); do so
significantly, i.e. the paired bootstrap interval of the difference excludes zero on the good side; and not be
worse than the champion by more than `secondary_tolerance` (relative) on any other metric both measured.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import asdict, dataclass
from typing import Any

from shared.domain.decisions import segments

_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_GATE = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(>=|<=|>|<)\s*(-?[\d.]+(?:[eE]-?\d+)?)\s*$")


@dataclass(frozen=True)
class AbsoluteGate:
    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.threshold)


@dataclass(frozen=True)
class GatePolicy:
    """The gates beyond the absolute ones and `min_improvement`. `decide(..., policy=None)` applies neither
    (the behaviour before they existed); `GatePolicy()` applies both with these defaults."""

    require_significance: bool = True
    confidence_level: float = 0.95
    secondary_tolerance: float | None = 0.05  # None: secondary metrics are not gated
    slice_tolerance: float | None = 0.05  # None: slices are recorded, not gated
    fairness_limit: float | None = None  # None: fairness is recorded, not gated


@dataclass(frozen=True)
class Verdict:
    gate: str
    passed: bool
    value: float | None
    threshold: float | None
    reason: str


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    verdicts: tuple[Verdict, ...]

    @property
    def reasons(self) -> list[str]:
        return [v.reason for v in self.verdicts if not v.passed]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "verdicts": [asdict(v) for v in self.verdicts]}


def parse_absolute_gates(spec: str) -> tuple[AbsoluteGate, ...]:
    gates = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        match = _GATE.match(part)
        if not match:
            raise ValueError(f"gate {part!r} is not of the form metric>=number")
        gates.append(AbsoluteGate(match[1], match[2], float(match[3])))
    return tuple(gates)


def decide(
    evaluation: dict[str, Any],
    absolute: tuple[AbsoluteGate, ...],
    min_improvement: float,
    *,
    policy: GatePolicy | None = None,
) -> GateDecision:
    """Absolute gates always; against a champion, the primary metric must also improve by `min_improvement`,
    and with a `policy`, significantly and without a secondary metric worse than its tolerance."""
    challenger: dict[str, float] = evaluation["challenger"]
    verdicts = [_absolute(gate, challenger) for gate in absolute]
    champion = evaluation.get("champion")
    if champion:
        verdicts.append(_improvement(evaluation, champion, min_improvement))
        if policy is not None and policy.require_significance:
            verdicts.append(_significance(evaluation, champion, policy.confidence_level))
        if policy is not None and policy.secondary_tolerance is not None:
            verdicts.extend(_secondary(evaluation, champion, policy.secondary_tolerance))
    if policy is not None:
        greater = _greater_is_better(str(evaluation.get("primary_metric", "")))
        found = segments.slices(evaluation, policy.slice_tolerance, greater)
        found += segments.fairness(evaluation, policy.fairness_limit)
        verdicts.extend(Verdict(**v) for v in found)
    return GateDecision(passed=all(v.passed for v in verdicts), verdicts=tuple(verdicts))


def _absolute(gate: AbsoluteGate, metrics: dict[str, float]) -> Verdict:
    value = metrics.get(gate.metric)
    if value is None:
        return Verdict(str(gate), False, None, gate.threshold, f"metric {gate.metric} was not measured")
    passed = gate.holds(value)
    relation = "meets" if passed else "fails"
    return Verdict(str(gate), passed, value, gate.threshold, f"{gate.metric}={value:.4g} {relation} {gate}")


def _improvement(evaluation: dict[str, Any], champion: dict[str, float], min_improvement: float) -> Verdict:
    metric = evaluation["primary_metric"]
    name = f"{metric} improves on champion by more than {min_improvement:.2%}"
    if champion.get(metric) is None:
        # e.g. ROC AUC on a holdout where the champion predicts one class: no comparison is possible
        return Verdict(name, True, None, min_improvement, f"champion has no {metric} on this holdout")
    new, old = float(evaluation["challenger"][metric]), float(champion[metric])
    sign = 1.0 if evaluation["greater_is_better"] else -1.0
    relative = sign * (new - old) / abs(old) if old else sign * (new - old)
    passed = relative > min_improvement
    reason = (
        f"challenger {metric}={new:.4g} vs champion {old:.4g}: "
        f"{'better' if relative > 0 else 'not better'} by {relative:+.2%}"
    )
    return Verdict(name, passed, relative, min_improvement, reason)


def _significance(evaluation: dict[str, Any], champion: dict[str, float], level: float) -> Verdict:
    """Value is the interval's bound nearest to zero on the good side; it must lie beyond the threshold 0."""
    metric = evaluation["primary_metric"]
    name = f"{metric} improvement significant at {level:.0%}"
    if champion.get(metric) is None:
        return Verdict(name, True, None, 0.0, f"champion has no {metric} on this holdout")
    comparison = evaluation.get("comparison") or {}
    if comparison.get("metric") != metric or comparison.get("difference") is None:
        why = comparison.get("reason") or "the evaluation has no bootstrap comparison of the two models"
        return Verdict(name, False, None, 0.0, f"significance of the {metric} difference unknown: {why}")
    greater = bool(evaluation["greater_is_better"])
    difference = float(comparison["difference"])
    low, high, p_value = comparison.get("ci_low"), comparison.get("ci_high"), comparison.get("p_value")
    measured_level = comparison.get("level")
    if low is None or high is None or measured_level is None:
        return Verdict(name, False, None, 0.0, f"no bootstrap interval for {metric}: no resample was valid")
    bound = float(low) if greater else float(high)
    better = difference > 0 if greater else difference < 0
    interval = f"{float(measured_level):.0%} CI [{float(low):+.4g}, {float(high):+.4g}]"
    p_text = "" if p_value is None else f"p={float(p_value):.3g}"
    if math.isclose(float(measured_level), level, abs_tol=1e-9):
        passed = bound > 0 if greater else bound < 0
        test = f"{interval} {'excludes' if passed else 'includes'} 0" + (f", {p_text}" if p_text else "")
    elif p_value is not None:
        # The interval was measured at another level; the two-sided p-value answers at any level.
        passed = better and float(p_value) < 1.0 - level
        test = f"{p_text} {'<' if float(p_value) < 1.0 - level else '>='} {1.0 - level:.3g} ({interval})"
    else:
        reason = (
            f"the interval is at {float(measured_level):.0%} and has no p-value; the gate needs {level:.0%}"
        )
        return Verdict(name, False, bound, 0.0, reason)
    direction = "better" if better else "not better"
    verdict = "significant" if passed else "not significant"
    reason = (
        f"challenger - champion {metric} = {difference:+.4g} ({direction}), {test}: "
        f"improvement {verdict} at {level:.0%}"
    )
    return Verdict(name, passed, bound, 0.0, reason)


def _secondary(evaluation: dict[str, Any], champion: dict[str, float], tolerance: float) -> list[Verdict]:
    """One verdict per other metric both models have: value is the relative change, positive = better."""
    primary = evaluation["primary_metric"]
    directions = evaluation.get("metric_directions") or {}
    verdicts = []
    for metric, new in sorted(evaluation["challenger"].items()):
        old = champion.get(metric)
        if metric == primary or old is None:
            continue
        greater = (
            directions.get(metric, "maximize" if _greater_is_better(metric) else "minimize") == "maximize"
        )
        sign = 1.0 if greater else -1.0
        relative = sign * (new - old) / abs(old) if old else sign * (new - old)
        passed = relative >= -tolerance
        change = f"{'better' if relative >= 0 else 'worse'} by {abs(relative):.2%}"
        reason = (
            f"challenger {metric}={new:.4g} vs champion {old:.4g}: {change}, "
            f"{'within' if passed else 'beyond'} the {tolerance:.2%} tolerance"
        )
        verdicts.append(
            Verdict(
                f"{metric} no worse than champion by more than {tolerance:.2%}",
                passed,
                relative,
                -tolerance,
                reason,
            )
        )
    return verdicts


def _greater_is_better(metric: str) -> bool:
    from shared.training.metrics import greater_is_better  # light: the module imports nothing heavy

    return greater_is_better(metric)
