"""Drift: the scheduled check that compares production inputs with the champion's training data, and the
handlers that turn a detected drift (ours, or an Azure ML model monitor's alert) into a training request, once
per drift episode."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from shared.deps import Deps
from shared.domain import drift
from shared.domain.messages import (
    DRIFT_DETECTED,
    CaseInsensitive,
    DriftDetected,
    MonitorAlert,
    RequestTraining,
)
from shared.handlers.drift_inputs import current_window, prediction_drift, table
from shared.handlers.training_requests import request_training
from shared.ports import ModelVersion, OutgoingEvent
from shared.state import cooldowns, keys, monitors, releases
from shared.state.datasets import load_manifest
from shared.state.records import Cooldown, MonitorRun

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def check_drift(deps: Deps, actor: str = "drift_check") -> dict[str, Any] | None:
    """Run the check; returns the summary recorded (None when there is nothing to compare yet)."""
    settings = deps.settings
    production = releases.production(deps.state, settings.model_name)
    if production is None:
        deps.audit.record(actor, "drift.skipped", "production", reason="no model in production")
        return None
    model = deps.registry.get(production.model, production.version)
    manifest = load_manifest(deps.blobs, settings.containers.datasets, model.tags["mlops.dataset_version"])
    window, current = current_window(deps, production)
    if current is None:
        deps.audit.record(actor, "drift.skipped", model.id, reason="no inference data yet", window=window)
        return None
    started = time.perf_counter()
    reference = drift.TableSource(
        tuple(table(deps, settings.containers.datasets, f["path"]) for f in manifest["files"]),
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
        deps.audit.record(
            actor, "drift.skipped", model.id, reason="no inference rows in the window", window=window
        )
        return None
    prediction = prediction_drift(deps, model, production, result, current)
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
        window=window,
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
    holder = _cooldown_holder(message.envelope.id, message.model_name, message.model_version, deps)
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


def _cooldown_holder(event_id: str, model_name: str, version: str, deps: Deps) -> Cooldown | None:
    """The earlier drift event whose retraining request still covers this one, or None after claiming the
    cooldown for this event (see shared.state.cooldowns)."""
    key = keys.drift_cooldown(model_name or deps.settings.model_name)
    seconds = deps.settings.drift.cooldown_seconds
    return cooldowns.claim(deps.state, key, event_id, version, deps.clock(), seconds)


# --- Azure ML model monitor alerts -> retraining -----------------------------------------------------------------

BREACH_DETAIL_CHARS = 2000  # the tag lists every feature over its threshold; the start says enough


def on_monitor_alert(message: MonitorAlert, deps: Deps, actor: str = "on_monitor_alert") -> None:
    """An Azure ML monitor's breach is drift of the managed model: retraining is asked for once per monitor run
    (its later status changes carry the same tag), within the same cooldown as our own drift events. The event
    does not say which model the monitor watches: it counts against the champion in production now."""
    monitor = message.signal or message.experiment_name or "unnamed"
    name = deps.settings.model_name
    production = releases.production(deps.state, name)
    version = production.version if production is not None else ""
    detail: dict[str, Any] = {
        "monitor_signal": message.signal,
        "monitor_run": message.run_id,
        "monitor_experiment": message.experiment_name,
        "monitor_run_subject": message.envelope.subject,
        "run_status": message.status,
        "workspace": message.envelope.topic,
        "breach": message.breach[:BREACH_DETAIL_CHARS],
    }
    if version:
        detail["model"] = f"{name}:{version}"
    event_id = message.envelope.id
    first = monitors.first_alert(
        deps.state, MonitorRun(message.run_id, event_id, message.signal, deps.clock().isoformat())
    )
    if first.event != event_id:
        deps.audit.record(
            actor,
            "monitor.repeated",
            message.run_id,
            key=f"monitor.repeated:{event_id}",
            event_id=event_id,
            first_event=first.event,
            run_status=message.status,
        )
        return
    holder = _cooldown_holder(event_id, name, version, deps)
    if holder is not None:
        deps.audit.record(
            actor,
            "drift.cooldown",
            f"monitor:{monitor}",
            event_id=event_id,
            requested_by=holder.event,
            cooldown_until=holder.until,
            **detail,
        )
        return
    request_training(RequestTraining(f"monitor:{monitor}", event_id, detail), deps, actor)
