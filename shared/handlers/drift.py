"""Drift: the scheduled check that compares production inputs with the champion's training data, and the
handler that turns a detected drift into a training request, once per drift episode."""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.deps import Deps
from shared.domain import drift
from shared.domain.messages import DRIFT_DETECTED, CaseInsensitive, DriftDetected, RequestTraining
from shared.handlers.training_requests import request_training
from shared.ports import BlobInfo, ModelVersion, OutgoingEvent
from shared.state import cooldowns, keys, releases
from shared.state.datasets import load_manifest
from shared.state.records import Cooldown, Production

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

TABLES = (".csv", ".parquet")
REFERENCE_PREDICTIONS = "drift/reference-predictions"
SCORING_BATCH_ROWS = 1000


def check_drift(deps: Deps, actor: str = "drift_check") -> dict[str, Any] | None:
    """Run the check; returns the summary recorded (None when there is nothing to compare yet)."""
    settings = deps.settings
    production = releases.production(deps.state, settings.model_name)
    if production is None:
        deps.audit.record(actor, "drift.skipped", "production", reason="no model in production")
        return None
    model = deps.registry.get(production.model, production.version)
    manifest = load_manifest(deps.blobs, settings.containers.datasets, model.tags["mlops.dataset_version"])
    window, parts = _inference_window(deps)
    if not parts:
        deps.audit.record(actor, "drift.skipped", model.id, reason="no inference data yet", window=window)
        return None
    started = time.perf_counter()
    reference = drift.TableSource(
        tuple(_table(deps, settings.containers.datasets, f["path"]) for f in manifest["files"]),
        settings.drift.chunk_rows,
    )
    current = drift.TableSource(parts, settings.drift.chunk_rows)
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
        deps.audit.record(
            actor, "drift.skipped", model.id, reason="no inference rows in the window", window=window
        )
        return None
    prediction = _prediction_drift(deps, model, production, result, current)
    seconds = time.perf_counter() - started
    summary = _publish_reports(deps, model, manifest["id"], window, result, prediction, seconds)
    deps.audit.record(
        actor,
        "drift.checked",
        model.id,
        drifted=result.drifted,
        drift_share=result.drift_share,
        drifted_columns=list(result.drifted_columns),
        schema_drift=result.schema.as_dict(),
        prediction_drifted=None if prediction is None else prediction.get("drifted"),
        reference_rows=result.reference_rows,
        current_rows=result.current_rows,
        report=summary["report_json"],
        report_html=summary["report_html"],
    )
    reasons = _reasons(result, prediction)
    if reasons:
        deps.publisher.publish([_drift_event(model, summary, result, prediction)])
        deps.audit.record(actor, "drift.published", model.id, event_type=DRIFT_DETECTED, reasons=reasons)
    return summary


def _reasons(result: drift.DriftResult, prediction: dict[str, Any] | None) -> list[str]:
    reasons = []
    if result.drifted:
        reasons.append("data")
    if prediction is not None and prediction.get("drifted"):
        reasons.append("prediction")
    if result.schema.drifted:
        reasons.append("schema")
    return reasons


def _publish_reports(
    deps: Deps,
    model: ModelVersion,
    dataset_version: str,
    window: dict[str, Any],
    result: drift.DriftResult,
    prediction: dict[str, Any] | None,
    seconds: float,
) -> dict[str, Any]:
    """The HTML report and the JSON summary, side by side in the reports container; returns the summary."""
    settings = deps.settings
    container = settings.containers.reports
    stamp = deps.clock().strftime("%Y%m%dT%H%M%S")
    base = f"drift/{model.name}-v{model.version}-{stamp}"
    html = drift.render_html(result)
    deps.blobs.write(container, f"{base}.html", html.encode(), content_type="text/html")
    summary = {
        "model": model.id,
        "dataset_version": dataset_version,
        "window": window,
        **result.summary(),
        "prediction_drift": prediction,
        "check_seconds": round(seconds, 3),
        "method": "Evidently DataDriftPreset defaults, computed in chunks on all rows (shared/domain/drift/)",
        "report_html": deps.blobs.url(container, f"{base}.html"),
        "report_json": deps.blobs.url(container, f"{base}.json"),
    }
    deps.blobs.write(
        container,
        f"{base}.json",
        json.dumps(summary, indent=1, default=str).encode(),
        content_type="application/json",
    )
    return summary


def _drift_event(
    model: ModelVersion, summary: dict[str, Any], result: drift.DriftResult, prediction: dict[str, Any] | None
) -> OutgoingEvent:
    return OutgoingEvent(
        event_type=DRIFT_DETECTED,
        subject=f"models/{model.name}/versions/{model.version}",
        data={
            "modelName": model.name,
            "modelVersion": model.version,
            "driftShare": result.drift_share,
            "driftedColumns": list(result.drifted_columns),
            "reportUrl": summary["report_json"],
            "htmlReportUrl": summary["report_html"],
            "dataDrift": result.drifted,
            "schemaDrift": result.schema.as_dict(),
            "predictionDrift": prediction,
        },
    )


# --- what is compared -------------------------------------------------------------------------------------------


def _table(deps: Deps, container: str, name: str, skip_rows: int = 0) -> drift.TablePart:
    """A table read from blob storage when a pass reaches it (one blob in memory at a time)."""

    def load() -> bytes | None:
        blob = deps.blobs.read(container, name)
        return None if blob is None else blob.data

    return drift.TablePart(name, load, skip_rows)


def _inference_window(deps: Deps) -> tuple[dict[str, Any], tuple[drift.TablePart, ...]]:
    """The inference tables of the current window, oldest first: those written in the last T hours, or the
    newest N rows (the oldest table of the window may contribute only its last rows)."""
    settings = deps.settings
    container = settings.containers.inference
    infos: list[BlobInfo] = sorted(
        (info for info in deps.blobs.list(container) if info.name.endswith(TABLES)),
        key=lambda info: (info.last_modified, info.name),
    )
    if settings.drift.window_hours > 0:
        since = deps.clock() - timedelta(hours=settings.drift.window_hours)
        chosen = [info for info in infos if info.last_modified >= since]
        window = {"hours": settings.drift.window_hours, "since": since.isoformat(), "files": len(chosen)}
        return window, tuple(_table(deps, container, info.name) for info in chosen)
    parts, remaining = [], settings.drift.window_rows
    for info in reversed(infos):
        if remaining <= 0:
            break
        blob = deps.blobs.read(container, info.name)
        if blob is None:
            continue
        rows = drift.count_rows(info.name, blob.data)
        skip = max(0, rows - remaining)
        parts.append(_table(deps, container, info.name, skip))
        remaining -= rows - skip
    parts.reverse()
    return {"rows": settings.drift.window_rows, "files": len(parts)}, tuple(parts)


# --- prediction drift ---------------------------------------------------------------------------------------------


def _prediction_drift(
    deps: Deps,
    model: ModelVersion,
    production: Production,
    result: drift.DriftResult,
    current: drift.ChunkSource,
) -> dict[str, Any] | None:
    """Drift of the logged predictions, against the champion's own predictions on the reference sample (the
    distribution its predictions had on the data it was trained on). None when no predictions are logged."""
    column = deps.settings.drift.prediction_column
    if not column or column not in result.current_columns:
        return None
    reference = _reference_predictions(deps, model, production, result.reference_sample)
    if isinstance(reference, str):
        return {"column": column, "checked": False, "reason": reference}
    outcome = drift.check(
        drift.FrameSource(reference, deps.settings.drift.chunk_rows),
        current,
        columns=[column],
        drift_share=deps.settings.drift.share,
        sample_rows=0,
    )
    verdict = outcome.columns.get(column)
    if verdict is None:
        reason = outcome.not_checked.get(column) or f"type changed: {outcome.schema.changed.get(column)}"
        return {"column": column, "checked": False, "reason": reason}
    return {
        "column": column,
        "checked": True,
        "reference": f"{model.id} on {len(reference)} sampled training rows",
        **verdict.as_dict(),
    }


def _reference_predictions(
    deps: Deps, model: ModelVersion, production: Production, sample: pd.DataFrame | None
) -> pd.DataFrame | str:
    """The champion's predictions on the reference sample: scored once per model version through its
    deployment, then kept next to the reports. Returns the reason instead when they cannot be had."""
    import pandas as pd

    column = deps.settings.drift.prediction_column
    container = deps.settings.containers.reports
    name = f"{REFERENCE_PREDICTIONS}/{model.name}-v{model.version}.csv"
    cached = deps.blobs.read(container, name)
    if cached is not None:
        return pd.read_csv(io.BytesIO(cached.data))
    if sample is None or sample.empty:
        return "no reference sample to score"
    predictions: list[Any] = []
    try:
        for start in range(0, len(sample), SCORING_BATCH_ROWS):
            batch = sample.iloc[start : start + SCORING_BATCH_ROWS]
            payload = {
                "input_data": {
                    "columns": list(batch.columns),
                    "index": list(range(len(batch))),
                    "data": batch.to_numpy().tolist(),
                }
            }
            predictions.extend(deps.endpoints.invoke(payload, deployment=production.deployment))
    except Exception as error:  # the endpoint is another service: its failure skips this part, recorded
        return f"scoring the reference sample failed: {error}"
    if len(predictions) != len(sample) or any(isinstance(p, list | dict) for p in predictions):
        return "the deployment's predictions are not one value per row"
    data = pd.DataFrame({column: predictions}).to_csv(index=False).encode()
    deps.blobs.write(container, name, data, content_type="text/csv")
    return pd.read_csv(io.BytesIO(data))  # as a later check will read it back: the same types every time


# --- drift -> retraining ------------------------------------------------------------------------------------------


def on_drift_detected(message: DriftDetected, deps: Deps, actor: str = "on_drift_detected") -> None:
    detail: dict[str, Any] = {
        "drift_share": message.drift_share,
        "drifted_columns": list(message.drifted_columns),
        "report": message.report_url,
    }
    if message.model_name:
        detail["model"] = f"{message.model_name}:{message.model_version}"
    subject = detail.get("model", "drift")
    if _schema_only(message):
        # retraining on the same training data cannot bring back a missing input or fix its type
        deps.audit.record(
            actor,
            "drift.not_retraining",
            subject,
            reason="schema drift only",
            event_id=message.envelope.id,
            **detail,
        )
        return
    holder = _cooldown_holder(message, deps)
    if holder is not None:
        deps.audit.record(
            actor,
            "drift.cooldown",
            subject,
            event_id=message.envelope.id,
            requested_by=holder.event,
            cooldown_until=holder.until,
            **detail,
        )
        return
    request_training(RequestTraining("drift", message.envelope.id, detail), deps, actor)


def _schema_only(message: DriftDetected) -> bool:
    """Our check says so explicitly; events without these keys (Azure ML's, older ones) are data drift."""
    data = CaseInsensitive(message.envelope.data)
    prediction = data.get("predictionDrift")
    prediction_drifted = isinstance(prediction, dict) and bool(prediction.get("drifted"))
    return data.get("dataDrift") is False and not prediction_drifted


def _cooldown_holder(message: DriftDetected, deps: Deps) -> Cooldown | None:
    """The earlier drift event whose retraining request still covers this one, or None after claiming the
    cooldown for this event (see shared.state.cooldowns)."""
    key = keys.drift_cooldown(message.model_name or deps.settings.model_name)
    seconds = deps.settings.drift.cooldown_seconds
    return cooldowns.claim(deps.state, key, message.envelope.id, message.model_version, deps.clock(), seconds)
