"""The live quality verdict: is a model version, judged on the rows it served whose true values came back,
worse than it was offline, or below a floor? Pure: the numbers in, the verdict and its reasons out.

- **Too few rows**: fewer joined rows than `min_rows` are not judged (said so, never taken as healthy).
- **Shortfall**: the live metric is worse than the offline holdout metric by more than `margin` (relative to
  the offline value), and significantly so: even the good end of its confidence interval is past that line.
- **Floor**: an absolute gate (`MLOPS_ABSOLUTE_GATES`) on a metric measured live fails, again with the whole
  interval on the failing side. A floor crossed only by the point estimate is noise on a small sample; the
  training gates can use points because the holdout is larger and fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from shared.domain.decisions.gates import AbsoluteGate

HEALTHY = "healthy"
DEGRADED = "degraded"
TOO_FEW_ROWS = "too_few_rows"
NOT_MEASURED = "not_measured"


@dataclass(frozen=True)
class LiveMetric:
    """A metric on the joined rows, with its bootstrap interval (None when no resample could measure it)."""

    metric: str
    value: float
    low: float | None
    high: float | None
    level: float
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        interval = "" if self.low is None else f", {self.level:.0%} CI {self.low:.4g} to {self.high:.4g}"
        return f"{self.metric}={self.value:.4g}{interval}, n={self.rows}"


@dataclass(frozen=True)
class QualityVerdict:
    status: str  # healthy | degraded | too_few_rows | not_measured
    reasons: tuple[str, ...]
    threshold: float | None = None  # the offline metric moved by the margin: the line a shortfall crosses

    @property
    def degraded(self) -> bool:
        return self.status == DEGRADED

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.status, "reasons": list(self.reasons), "threshold": self.threshold}


def choose_metric(
    primary: str, live: Iterable[str], offline: Mapping[str, float], candidates: Sequence[str]
) -> tuple[str | None, str]:
    """The metric to compare live with offline: the primary one if it can be measured on the logged
    predictions (ROC AUC and log loss need scores the endpoint does not log), else the first of `candidates`
    measured both live and offline. Returns it and a note saying why it is not the primary."""
    measured = set(live)
    if primary in measured:
        return primary, ""
    for name in candidates:
        if name in measured and name in offline:
            return name, f"{primary} cannot be measured on the logged predictions; compared on {name}"
    return (
        None,
        f"neither {primary} nor another metric measured offline can be measured on the logged predictions",
    )


def judge(
    live: LiveMetric | None,
    *,
    rows: int,
    greater_is_better: bool,
    offline: float | None,
    margin: float,
    min_rows: int,
    floors: Sequence[AbsoluteGate] = (),
    measured: Mapping[str, LiveMetric] | None = None,
) -> QualityVerdict:
    """The verdict on one model version; `measured` holds the live metrics the floors are checked on."""
    if rows < min_rows:
        return QualityVerdict(
            TOO_FEW_ROWS, (f"{rows} joined rows, fewer than the {min_rows} needed to judge",)
        )
    if live is None:
        return QualityVerdict(NOT_MEASURED, ("no metric comparable with the offline one could be measured",))
    reasons: list[str] = []
    threshold = None
    if offline is not None:
        sign = 1.0 if greater_is_better else -1.0
        threshold = offline - sign * margin * abs(offline)
        best = live.high if greater_is_better else live.low
        if best is not None and sign * (best - threshold) < 0:
            reasons.append(
                f"live {live} is significantly {'below' if greater_is_better else 'above'} the offline "
                f"{live.metric}={offline:.4g} by more than {margin:.0%} (line {threshold:.4g})"
            )
    for gate in floors:
        metric = (measured or {}).get(gate.metric)
        if metric is None or metric.low is None or metric.high is None:
            continue
        best = metric.high if gate.op in (">", ">=") else metric.low
        if not gate.holds(best):
            reasons.append(f"live {metric} fails the floor {gate} with its whole interval")
    if reasons:
        return QualityVerdict(DEGRADED, tuple(reasons), threshold)
    said = (
        f"live {live} vs offline {offline:.4g}" if offline is not None else f"live {live}, no offline value"
    )
    return QualityVerdict(HEALTHY, (f"{said}: no significant shortfall, no floor failed",), threshold)
