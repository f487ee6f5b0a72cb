"""Drift: the scheduled check that compares production inputs with the champion's training data, and the
handler that turns a detected drift into a training request."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from shared.bootstrap import Deps
from shared.datasets import load_manifest
from shared.handlers.requests import request_training
from shared.handlers.training import PRODUCTION_KEY
from shared.messages import DRIFT_DETECTED, DriftDetected, RequestTraining
from shared.ports import OutgoingEvent

log = logging.getLogger(__name__)


def check_drift(deps: Deps, actor: str = "drift_check") -> dict[str, Any] | None:
    """Run the check; returns the summary recorded (None when there is nothing to compare yet)."""
    settings = deps.settings
    production = deps.state.get(PRODUCTION_KEY)
    if production is None:
        deps.audit.record(actor, "drift.skipped", "production", reason="no model in production")
        return None
    model = deps.registry.get(production.body["model"], production.body["version"])
    manifest = load_manifest(deps.blobs, settings.containers.datasets, model.tags["mlops.dataset_version"])
    reference = _frame([deps.blobs.read(settings.containers.datasets, f["path"]) for f in manifest["files"]])
    features = [c for c in reference.columns if c != settings.training.target]
    current = _recent_inference(deps, features)
    if current is None or current.empty:
        deps.audit.record(actor, "drift.skipped", model.id, reason="no inference data yet")
        return None
    from shared import drift

    result = drift.check(reference[features], current[features], settings.drift_share)
    stamp = deps.clock().strftime("%Y%m%dT%H%M%S")
    base = f"drift/{model.name}-v{model.version}-{stamp}"
    deps.blobs.write(
        settings.containers.reports, f"{base}.html", result.html.encode(), content_type="text/html"
    )
    summary = {
        "model": model.id,
        "dataset_version": manifest["id"],
        "reference_rows": len(reference),
        "current_rows": len(current),
        "drifted": result.drifted,
        "drift_share": result.drift_share,
        "threshold": settings.drift_share,
        "drifted_columns": list(result.drifted_columns),
        "columns": result.columns,
        "report_html": deps.blobs.url(settings.containers.reports, f"{base}.html"),
    }
    deps.blobs.write(
        settings.containers.reports,
        f"{base}.json",
        json.dumps(summary, indent=1).encode(),
        content_type="application/json",
    )
    report_url = deps.blobs.url(settings.containers.reports, f"{base}.json")
    deps.audit.record(
        actor,
        "drift.checked",
        model.id,
        drifted=result.drifted,
        drift_share=result.drift_share,
        drifted_columns=list(result.drifted_columns),
        report=report_url,
    )
    if result.drifted:
        deps.publisher.publish(
            [
                OutgoingEvent(
                    event_type=DRIFT_DETECTED,
                    subject=f"models/{model.name}/versions/{model.version}",
                    data={
                        "modelName": model.name,
                        "modelVersion": model.version,
                        "driftShare": result.drift_share,
                        "driftedColumns": list(result.drifted_columns),
                        "reportUrl": report_url,
                        "htmlReportUrl": summary["report_html"],
                    },
                )
            ]
        )
        deps.audit.record(actor, "drift.published", model.id, event_type=DRIFT_DETECTED)
    return summary


def on_drift_detected(message: DriftDetected, deps: Deps, actor: str = "on_drift_detected") -> None:
    detail: dict[str, Any] = {
        "drift_share": message.drift_share,
        "drifted_columns": list(message.drifted_columns),
        "report": message.report_url,
    }
    if message.model_name:
        detail["model"] = f"{message.model_name}:{message.model_version}"
    request_training(RequestTraining("drift", message.envelope.id, detail), deps, actor)


def _recent_inference(deps: Deps, features: list[str]):
    """The newest inference files, up to the configured window of rows."""
    container = deps.settings.containers.inference
    blobs = sorted(deps.blobs.list(container), key=lambda info: info.last_modified, reverse=True)
    frames, rows = [], 0
    for info in blobs:
        if not info.name.endswith((".csv", ".parquet")):
            continue
        frame = _frame([deps.blobs.read(container, info.name)])
        if not set(features) <= set(frame.columns):
            log.warning("inference file lacks feature columns", extra={"blob": info.name})
            continue
        frames.append(frame)
        rows += len(frame)
        if rows >= deps.settings.drift_window_rows:
            break
    if not frames:
        return None
    import pandas as pd

    return pd.concat(frames, ignore_index=True).head(deps.settings.drift_window_rows)


def _frame(blobs: list):
    import pandas as pd

    frames = []
    for blob in blobs:
        if blob is None:
            continue
        reader = pd.read_parquet if blob.info.name.endswith(".parquet") else pd.read_csv
        frames.append(reader(io.BytesIO(blob.data)))
    return pd.concat(frames, ignore_index=True)
