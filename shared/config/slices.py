"""Per-segment gates: declared slices of the holdout, and fairness across a sensitive column (binary tasks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from shared.config.declare import COLUMNS, STRIPPED, ConfigError, integer, number_or_off, setting


@dataclass(frozen=True)
class SliceSettings:
    title: ClassVar[str] = "Slices and fairness (gates per segment of the holdout)"

    columns: tuple[str, ...] = setting(
        "MLOPS_SLICE_COLUMNS",
        "",
        COLUMNS,
        "Columns whose values slice the holdout; per slice, challenger and champion are compared on the same "
        "rows with the paired bootstrap (a numeric column with many values is cut into quartiles).",
    )
    min_rows: int = setting(
        "MLOPS_SLICE_MIN_ROWS",
        "30",
        integer(2),
        "Holdout rows a slice (or a sensitive group) needs to be judged; smaller ones are reported as too small.",
    )
    tolerance: float | None = setting(
        "MLOPS_SLICE_TOLERANCE",
        "0.05",
        number_or_off(0.0),
        "A challenger is rejected when, on any slice with enough rows, it is significantly worse than the "
        "champion by more than this share of the champion's metric there; `off` records slices without gating.",
    )
    sensitive_column: str = setting(
        "MLOPS_SENSITIVE_COLUMN",
        "",
        STRIPPED,
        "Binary tasks: the column whose groups the fairness metrics compare (demographic parity and equalized "
        "odds differences), recorded in lineage.",
    )
    fairness_max_difference: float | None = setting(
        "MLOPS_FAIRNESS_MAX_DIFFERENCE",
        "off",
        number_or_off(0.0),
        "Largest demographic parity or equalized odds difference a challenger may show; `off` records them "
        "without gating.",
    )

    def as_job_config(self) -> dict[str, Any]:
        """What the evaluation step needs (the gates themselves are applied by the app)."""
        return {
            "slice_columns": list(self.columns) or None,
            "slice_min_rows": self.min_rows,
            "sensitive_column": self.sensitive_column or None,
        }


def check_slices(raw: Mapping[str, str], defaults: Mapping[str, str]) -> None:
    """A fairness limit needs something to measure: a sensitive column, on a binary task."""
    limit = (
        (raw.get("MLOPS_FAIRNESS_MAX_DIFFERENCE") or defaults["MLOPS_FAIRNESS_MAX_DIFFERENCE"])
        .strip()
        .lower()
    )
    if limit == "off":
        return
    if not (raw.get("MLOPS_SENSITIVE_COLUMN") or "").strip():
        raise ConfigError(
            "MLOPS_FAIRNESS_MAX_DIFFERENCE is set: MLOPS_SENSITIVE_COLUMN names the column to measure"
        )
    task = (raw.get("MLOPS_TASK") or defaults.get("MLOPS_TASK", "")).strip().lower()
    if task and task != "binary":
        raise ConfigError(
            f"MLOPS_FAIRNESS_MAX_DIFFERENCE is set, but fairness is measured for binary tasks only "
            f"(MLOPS_TASK is {task})"
        )
