"""The yardstick: what Evidently's own DataDriftPreset decides on two frames in memory. The chunked check in
`shared.domain.drift` must reach the same verdicts; the unit tests and `bench/drift.py` compare the two."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class PresetVerdicts:
    drifted: bool
    drift_share: float
    columns: dict[str, bool]
    scores: dict[str, float]
    methods: dict[str, str]


def preset_verdicts(
    reference: pd.DataFrame, current: pd.DataFrame, drift_share: float = 0.5
) -> PresetVerdicts:
    """What Evidently's DataDriftPreset itself decides on two frames in memory: the yardstick for `check`."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True).run(
        reference_data=reference, current_data=current
    )
    summary = snapshot.dict()
    scores, methods, share = {}, {}, 0.0
    for metric in summary["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith("ValueDrift"):
            scores[config["column"]] = float(metric["value"])
            methods[config["column"]] = config["method"]
    columns, drifted = {}, False
    for test in summary["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith("ValueDrift"):
            columns[params["column"]] = test["status"] == "FAIL"
        elif params["type"].endswith("DriftedColumnsCount"):
            drifted = test["status"] == "FAIL"
    return PresetVerdicts(drifted, share, columns, scores, methods)
