"""Quality gates: pure decisions over an `evaluation.json`, every verdict recorded with its numbers."""

from __future__ import annotations

import operator
import re
from dataclasses import asdict, dataclass
from typing import Any

_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_GATE = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(>=|<=|>|<)\s*(-?[\d.]+(?:[eE]-?\d+)?)\s*$")


@dataclass(frozen=True)
class AbsoluteGate:
    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"


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
    evaluation: dict[str, Any], absolute: tuple[AbsoluteGate, ...], min_improvement: float
) -> GateDecision:
    """Absolute gates always; against a champion, the primary metric must also improve by `min_improvement`."""
    challenger: dict[str, float] = evaluation["challenger"]
    verdicts = [_absolute(gate, challenger) for gate in absolute]
    champion = evaluation.get("champion")
    if champion:
        verdicts.append(_improvement(evaluation, champion, min_improvement))
    return GateDecision(passed=all(v.passed for v in verdicts), verdicts=tuple(verdicts))


def _absolute(gate: AbsoluteGate, metrics: dict[str, float]) -> Verdict:
    value = metrics.get(gate.metric)
    if value is None:
        return Verdict(str(gate), False, None, gate.threshold, f"metric {gate.metric} was not measured")
    passed = _OPERATORS[gate.op](value, gate.threshold)
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
