"""The drift check itself: the champion's training data against the window of what production served, the
served predictions against the champion's own, and the HTML report and JSON summary written side by side in
the reports container. What the job returns is its outcome: `checked` with the summary, or `skipped` with the
reason; the app records it and decides what follows (shared/handlers/drift_check.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from shared.domain import drift
from shared.drift_job.inputs import Context, current_window, prediction_drift, table
from shared.ports import DriftJob
from shared.state.datasets import load_manifest

CHECKED = "checked"
SKIPPED = "skipped"
METHOD = "Evidently DataDriftPreset defaults, computed in chunks on all rows (shared/domain/drift/)"


def run(context: Context, job: DriftJob) -> dict[str, Any]:
    settings = context.settings
    manifest = load_manifest(context.blobs, settings.containers.datasets, job.dataset_version)
    window, current = current_window(context, job)
    if current is None:
        return {"outcome": SKIPPED, "reason": "no inference data yet", "window": window}
    started = time.perf_counter()
    reference = drift.TableSource(
        tuple(table(context, settings.containers.datasets, f["path"]) for f in manifest["files"]),
        settings.drift.chunk_rows,
    )
    result = drift.check(
        reference,
        current,
        columns=settings.training.features or None,
        ignore=(settings.training.target, settings.drift.prediction_column),
        drift_share=settings.drift.share,
        sample_rows=settings.drift.sample_rows,
        seed=settings.training.seed,
    )
    if result.current_rows == 0:
        return {"outcome": SKIPPED, "reason": "no inference rows in the window", "window": window}
    prediction = prediction_drift(context, job, result, current)
    seconds = time.perf_counter() - started
    summary = _publish_reports(context, job, window, result, prediction, seconds)
    return {"outcome": CHECKED, "summary": summary}


def _publish_reports(
    context: Context,
    job: DriftJob,
    window: dict[str, Any],
    result: drift.DriftResult,
    prediction: dict[str, Any] | None,
    seconds: float,
) -> dict[str, Any]:
    """The HTML report and the JSON summary, side by side in the reports container; returns the summary."""
    blobs, model = context.blobs, job.model
    container = context.settings.containers.reports
    base = f"drift/{model.name}-v{model.version}-{context.now:%Y%m%dT%H%M%S}"
    html = drift.render_html(result)
    blobs.write(container, f"{base}.html", html.encode(), content_type="text/html")
    summary = {
        "model": model.id,
        "check": job.check_id,
        "dataset_version": job.dataset_version,
        "window": window,
        **result.summary(),
        "prediction_drift": prediction,
        "check_seconds": round(seconds, 3),
        "method": METHOD,
        "report_html": blobs.url(container, f"{base}.html"),
        "report_json": blobs.url(container, f"{base}.json"),
    }
    blobs.write(
        container,
        f"{base}.json",
        json.dumps(summary, indent=1, default=str).encode(),
        content_type="application/json",
    )
    return summary
