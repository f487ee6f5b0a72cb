"""What the check finds: every column's verdict (as Evidently's per-column test gives it and as its data-set
count takes it), schema drift, and the data set's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.domain.drift.stattests import TESTS


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    column_type: str  # numerical, categorical or text, as Evidently infers it from the current data
    stattest: str
    score: (
        float  # Evidently's score; for a Wasserstein distance not pinned down, an estimate within the bounds
    )
    threshold: float
    drifted: bool
    reference_values: int  # values tested (missing values and infinities left out, as Evidently does)
    current_values: int
    bounds: tuple[float, float] | None = None  # the score lies within these, when it is not known exactly
    sample: tuple[int, int] | None = None  # a text column tested on samples of this many values of each
    counted: bool = True  # whether Evidently's data-set count takes the column
    count_verdict: tuple[str, float, bool] | None = None  # the count's (test, score, drifted) if different

    @property
    def method(self) -> str:
        return TESTS[self.stattest].display

    @property
    def exact(self) -> bool:
        return self.bounds is None

    @property
    def counted_drifted(self) -> bool:
        return self.drifted if self.count_verdict is None else self.count_verdict[2]

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "type": self.column_type,
            "method": self.method,
            "stattest": self.stattest,
            "value": self.score,
            "value_exact": self.exact,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "reference_values": self.reference_values,
            "current_values": self.current_values,
        }
        if self.bounds is not None:
            summary["value_bounds"] = list(self.bounds)
        if self.sample is not None:
            summary["sample"] = {"reference": self.sample[0], "current": self.sample[1]}
        if not self.counted:
            summary["data_set_count"] = (
                "not counted: Evidently counts numerical columns with numeric references"
            )
        elif self.count_verdict is not None:
            test, score, drifted = self.count_verdict
            summary["data_set_count"] = {"stattest": test, "value": score, "drifted": drifted}
        return summary


@dataclass(frozen=True)
class SchemaDrift:
    missing: tuple[str, ...] = ()  # expected columns the current data lacks
    new: tuple[str, ...] = ()  # current columns the reference does not have
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (reference, current type)

    @property
    def drifted(self) -> bool:
        return bool(self.missing or self.new or self.changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "missing": list(self.missing),
            "new": list(self.new),
            "changed": {name: {"reference": r, "current": c} for name, (r, c) in self.changed.items()},
        }


@dataclass(frozen=True)
class DriftResult:
    drifted: bool  # Evidently's data-set verdict: the share of its count's drifted columns >= the threshold
    drift_share: float
    threshold: float
    drifted_columns: tuple[str, ...]  # by the per-column verdicts
    columns: dict[str, ColumnDrift]
    schema: SchemaDrift
    not_checked: dict[str, str]  # column -> why it has no verdict
    reference_rows: int
    current_rows: int
    current_columns: tuple[str, ...] = ()  # every column the current data has, tested or not
    reference_sample: Any = field(repr=False, default=None)  # bounded samples of rows, for the HTML report
    current_sample: Any = field(repr=False, default=None)

    def summary(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drift_share": self.drift_share,
            "threshold": self.threshold,
            "drifted_columns": list(self.drifted_columns),
            "number_of_columns": len(self.columns),
            "counted_columns": sum(v.counted for v in self.columns.values()),
            "columns": {name: verdict.as_dict() for name, verdict in self.columns.items()},
            "schema_drift": self.schema.as_dict(),
            "not_checked": dict(self.not_checked),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "sample_rows": {
                "reference": 0 if self.reference_sample is None else len(self.reference_sample),
                "current": 0 if self.current_sample is None else len(self.current_sample),
            },
        }
