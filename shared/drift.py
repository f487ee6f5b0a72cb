"""Data drift with Evidently's DataDriftPreset: the report people read and the verdict we act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DriftResult:
    drifted: bool
    drift_share: float
    drifted_columns: tuple[str, ...]
    columns: dict[str, dict[str, Any]]
    html: str
    summary: dict[str, Any]


def check(reference, current, drift_share: float) -> DriftResult:
    """Compare `current` with `reference` (pandas frames with the same feature columns)."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset(drift_share=drift_share)]).run(
        reference_data=reference, current_data=current
    )
    summary = snapshot.dict()
    columns: dict[str, dict[str, Any]] = {}
    share = 0.0
    for metric in summary["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith("ValueDrift"):
            p_or_distance = float(metric["value"])
            threshold = float(config["threshold"])
            # p-value tests drift below the threshold; distance tests (Wasserstein, PSI...) above it
            is_p_value = "p_value" in config["method"]
            drifted = p_or_distance < threshold if is_p_value else p_or_distance >= threshold
            columns[config["column"]] = {
                "method": config["method"],
                "value": p_or_distance,
                "threshold": threshold,
                "drifted": drifted,
            }
    drifted_columns = tuple(sorted(c for c, v in columns.items() if v["drifted"]))
    return DriftResult(
        drifted=share >= drift_share,
        drift_share=share,
        drifted_columns=drifted_columns,
        columns=columns,
        html=snapshot.get_html_str(as_iframe=False),
        summary=summary,
    )
