"""The drift report the deployed app draws without Evidently: every column's full-data verdict, and what the
bounded samples of rows look like on each side (numbers: quantiles; categories and text: the commonest values),
as one self-contained HTML page with no script. Where Evidently is installed (local mode) the report is its
DataDriftPreset instead (`report.render_html`); the verdicts are the same either way."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.domain.drift.results import ColumnDrift, DriftResult

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:1rem 0}"
    "td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}"
    ".drift{color:#b00020;font-weight:600}.bar{background:#4a78c2;height:.6rem;display:inline-block}"
)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
COMMONEST = 5


def plain_html(result: DriftResult, notes: str) -> str:
    verdict = "drift" if result.drifted else "no drift"
    rows = "".join(_row(result, name, column) for name, column in result.columns.items())
    skipped = "".join(
        f"<li>{html.escape(name)}: {html.escape(why)}</li>" for name, why in result.not_checked.items()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Data drift: {verdict}</title>"
        f"<style>{STYLE}</style></head><body><h1>Data drift: {verdict}</h1>{notes}"
        "<table><tr><th>column</th><th>type</th><th>test</th><th>score</th><th>threshold</th><th>verdict</th>"
        f"<th>reference (sample)</th><th>current (sample)</th></tr>{rows}</table>"
        + (f"<h2>Not checked</h2><ul>{skipped}</ul>" if skipped else "")
        + f"<h2>Schema</h2><pre>{html.escape(str(result.schema.as_dict()))}</pre></body></html>"
    )


def _row(result: DriftResult, name: str, column: ColumnDrift) -> str:
    score = f"{column.score:.4g}"
    if column.bounds is not None:
        score += f" (between {column.bounds[0]:.4g} and {column.bounds[1]:.4g})"
    verdict = "<span class='drift'>drift</span>" if column.drifted else "no drift"
    sides = [
        _describe(sample, name, column.column_type)
        for sample in (result.reference_sample, result.current_sample)
    ]
    return (
        f"<tr><td>{html.escape(name)}</td><td>{column.column_type}</td><td>{html.escape(column.method)}</td>"
        f"<td>{score}</td><td>{column.threshold:.4g}</td><td>{verdict}</td><td>{sides[0]}</td><td>{sides[1]}</td></tr>"
    )


def _describe(sample: Any, name: str, column_type: str) -> str:
    """What a side's sample of the column looks like: quantiles of numbers, the commonest values otherwise."""
    if sample is None or name not in getattr(sample, "columns", ()):
        return "no sample"
    import pandas as pd

    values = sample[name].dropna()
    if values.empty:
        return "no values"
    if column_type == "numerical":
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        if numbers.empty:
            return "no numbers"
        quantiles = numbers.quantile(list(QUANTILES))
        cells = " ".join(f"p{round(q * 100)} {quantiles[q]:.4g}" for q in QUANTILES)
        return f"{len(numbers)} values, mean {numbers.mean():.4g}<br>{cells}"
    shares = values.astype(str).value_counts(normalize=True).head(COMMONEST)
    lines = [
        f"<span class='bar' style='width:{share * 6:.2f}rem'></span> {html.escape(value[:40])} {share:.1%}"
        for value, share in shares.items()
    ]
    return f"{len(values)} values<br>" + "<br>".join(lines)
