"""Evidently's DataDriftPreset report, drawn on the bounded samples of rows but showing the full data's scores
and verdicts: each column's method is an Evidently stat test that answers with the verdict already computed."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from shared.domain.drift.stattests import TESTS

if TYPE_CHECKING:
    from shared.domain.drift.decision import ColumnDrift, DriftResult

_FULL_DATA: ContextVar[dict[str, ColumnDrift]] = ContextVar("mlops_drift_full_data")


def _full_data_stattest(test: str) -> Any:
    """An Evidently stat test that answers with the verdict computed on the full data (looked up by column), so
    a report drawn on a sample shows the full data's scores and verdicts."""
    # Evidently 0.7 defines custom drift methods only in its legacy namespace; these are that package's exports
    # (its __all__), the types `DataDriftPreset(per_column_method=...)` itself is declared with. A plain function
    # would do too, but the report would name it "custom function 'answer'" instead of the test.
    from evidently import ColumnType
    from evidently.legacy.calculations.stattests import StatTest as EvidentlyStatTest
    from evidently.legacy.calculations.stattests import register_stattest

    spec = TESTS[test]

    def answer(
        reference_data: Any, current_data: Any, feature_type: Any, threshold: float
    ) -> tuple[float, bool]:
        verdict = _FULL_DATA.get()[reference_data.name]
        return verdict.score, verdict.drifted

    stattest = EvidentlyStatTest(
        name=f"mlops_full_data_{test}",
        display_name=f"{spec.display} (full data)",
        allowed_feature_types=[ColumnType.Numerical, ColumnType.Categorical, ColumnType.Text],
        default_threshold=spec.threshold,
    )
    register_stattest(stattest, default_impl=answer)
    return stattest


def render_html(result: DriftResult) -> str:
    """Evidently's DataDriftPreset report on the samples, with every column's full-data score and verdict."""
    import pandas as pd

    reference, current = result.reference_sample, result.current_sample
    shown = [
        name
        for name in result.columns
        if reference is not None
        and current is not None
        and name in reference.columns
        and name in current.columns
        and reference[name].notna().any()
        and current[name].notna().any()
    ]
    if not shown:
        return _plain_html(result)
    from evidently import Report
    from evidently.presets import DataDriftPreset

    methods = {name: _full_data_stattest(result.columns[name].stattest) for name in shown}
    thresholds = {name: result.columns[name].threshold for name in shown}
    token = _FULL_DATA.set(result.columns)
    try:
        snapshot = Report(
            [
                DataDriftPreset(
                    columns=shown,
                    drift_share=result.threshold,
                    per_column_method=methods,
                    per_column_threshold=thresholds,
                )
            ]
        ).run(reference_data=pd.DataFrame(reference[shown]), current_data=pd.DataFrame(current[shown]))
        html = snapshot.get_html_str(as_iframe=False)
    finally:
        _FULL_DATA.reset(token)
    note = (
        f"<p>Verdicts and scores: all {result.reference_rows} reference and {result.current_rows} current rows. "
        f"Distributions: samples of {len(reference)} and {len(current)} rows.</p>"
    )
    return html.replace("<body>", f"<body>{note}", 1)


def _plain_html(result: DriftResult) -> str:
    import html

    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(v.method)}</td><td>{v.score:.4g}</td>"
        f"<td>{'drift' if v.drifted else 'no drift'}</td></tr>"
        for n, v in result.columns.items()
    )
    return (
        "<html><body><h1>Data drift</h1>"
        f"<p>drift share {result.drift_share:.2f}, threshold {result.threshold:.2f}</p>"
        f"<table>{rows}</table><pre>{html.escape(str(result.schema.as_dict()))}</pre></body></html>"
    )
