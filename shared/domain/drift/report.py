"""Evidently's DataDriftPreset report, drawn on the bounded samples of rows but showing the full data's scores
and verdicts: each column's method is an Evidently stat test that answers with the verdict already computed.

Evidently (with plotly, statsmodels, nltk) is installed in local mode, not in the deployed app: there the report is
the plain one (`plain_report`), with the same verdicts."""

from __future__ import annotations

import importlib.util
import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import shared.domain.drift.rules as rules
from shared.domain.drift.stattests import TESTS

if TYPE_CHECKING:
    from shared.domain.drift.results import ColumnDrift, DriftResult

log = logging.getLogger(__name__)
_FULL_DATA: ContextVar[dict[str, ColumnDrift]] = ContextVar("mlops_drift_full_data")


def _full_data_stattest(verdict: ColumnDrift) -> Any:
    """An Evidently stat test that answers with the verdict computed on the full data (looked up by column), so
    a report drawn on a sample shows the full data's scores and verdicts; its name says when the score is only
    known within bounds, or comes from samples."""
    # Evidently 0.7 defines custom drift methods only in its legacy namespace; these are that package's exports
    # (its __all__), the types `DataDriftPreset(per_column_method=...)` itself is declared with. A plain function
    # would do too, but the report would name it "custom function 'answer'" instead of the test.
    from evidently import ColumnType
    from evidently.legacy.calculations.stattests import StatTest as EvidentlyStatTest
    from evidently.legacy.calculations.stattests import register_stattest

    test = verdict.stattest
    spec = TESTS[test]
    name, display = f"mlops_full_data_{test}", f"{spec.display} (full data)"
    if verdict.bounds is not None:
        low, high = verdict.bounds
        name, display = (
            f"{name}_{verdict.column}",
            f"{spec.display}, full data: between {low:.4g} and {high:.4g}",
        )
    elif verdict.sample is not None:
        name, display = (
            f"{name}_{verdict.column}",
            f"{spec.display} (samples of {verdict.sample[0]} and {verdict.sample[1]})",
        )

    def answer(
        reference_data: Any, current_data: Any, feature_type: Any, threshold: float
    ) -> tuple[float, bool]:
        verdict = _FULL_DATA.get()[reference_data.name]
        return verdict.score, verdict.drifted

    stattest = EvidentlyStatTest(
        name=name,
        display_name=display,
        allowed_feature_types=[ColumnType.Numerical, ColumnType.Categorical, ColumnType.Text],
        default_threshold=spec.threshold,
    )
    register_stattest(stattest, default_impl=answer)
    return stattest


def render_html(result: DriftResult) -> str:
    """Evidently's DataDriftPreset report on the samples, with every column's full-data score and verdict;
    the plain report where Evidently is not installed."""
    if importlib.util.find_spec("evidently") is None:
        return _plain_html(result)
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
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    # the full data's types, not those Evidently would infer from the samples (a sample of text may look like
    # categories, one of strings and numbers may start with a number)
    by_type = {kind: [n for n in shown if result.columns[n].column_type == kind] for kind in rules.TESTED}
    definition = DataDefinition(
        numerical_columns=by_type["numerical"],
        categorical_columns=by_type["categorical"],
        text_columns=by_type["text"],
    )
    methods = {name: _full_data_stattest(result.columns[name]) for name in shown}
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
        ).run(
            reference_data=Dataset.from_pandas(pd.DataFrame(reference[shown]), data_definition=definition),
            current_data=Dataset.from_pandas(pd.DataFrame(current[shown]), data_definition=definition),
        )
        html = snapshot.get_html_str(as_iframe=False)
    except Exception as error:  # the report is drawn on samples Evidently may refuse: the verdicts stand
        log.warning("drift: Evidently could not draw the report on the samples", extra={"error": repr(error)})
        return _plain_html(result)
    finally:
        _FULL_DATA.reset(token)
    return html.replace("<body>", f"<body>{_notes(result, len(reference), len(current))}", 1)


def _notes(result: DriftResult, reference_rows: int, current_rows: int) -> str:
    """What the report drawn on samples cannot show: the data-set verdict of Evidently's own count (which tests
    some columns on other data than their own test), scores known only within bounds, sampled text columns."""
    import html

    counted = [v for v in result.columns.values() if v.counted]
    lines = [
        f"Verdicts and scores: all {result.reference_rows} reference and {result.current_rows} current rows. "
        f"Distributions: samples of {reference_rows} and {current_rows} rows.",
        f"Data set: {'drift' if result.drifted else 'no drift'}, {result.drift_share:.4g} of the "
        f"{len(counted)} columns Evidently's data-set count takes drifted (threshold {result.threshold:.4g}).",
    ]
    for verdict in result.columns.values():
        name = html.escape(verdict.column)
        if not verdict.counted:
            lines.append(
                f"{name}: not in the data-set count (Evidently counts numerical columns with numbers)."
            )
        elif verdict.count_verdict is not None:
            test, score, drifted = verdict.count_verdict
            lines.append(
                f"{name}: the data-set count keeps +-inf (no missing value) and finds {TESTS[test].display} "
                f"{score:.4g}, {'drift' if drifted else 'no drift'}."
            )
        if verdict.bounds is not None:
            low, high = verdict.bounds
            lines.append(
                f"{name}: {verdict.method} between {low:.6g} and {high:.6g} (verdict exact, score bounded)."
            )
        if verdict.sample is not None:
            lines.append(
                f"{name}: text tested on uniform samples of {verdict.sample[0]} and {verdict.sample[1]} values "
                "(more text than the check holds; Evidently would use every row)."
            )
    return "".join(f"<p>{line}</p>" for line in lines)


def _plain_html(result: DriftResult) -> str:
    from shared.domain.drift.plain_report import plain_html

    samples = [0 if s is None else len(s) for s in (result.reference_sample, result.current_sample)]
    return plain_html(result, _notes(result, *samples))
