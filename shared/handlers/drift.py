"""Drift -> retraining: a detected drift (our scheduled check's, `shared.handlers.drift_check`, or an Azure ML
model monitor's alert) becomes a training request, once per drift episode."""

from __future__ import annotations

import logging
from typing import Any

from shared.deps import Deps
from shared.domain.messages import CaseInsensitive, DriftDetected, MonitorAlert, RequestTraining
from shared.handlers.training_requests import request_training
from shared.state import cooldowns, keys, monitors, releases
from shared.state.records import Cooldown, MonitorRun

log = logging.getLogger(__name__)

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
