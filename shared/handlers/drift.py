"""Drift: the scheduled check that compares production inputs with the champion's training data, and the
handlers that turn a detected drift (ours, or an Azure ML model monitor's alert) into a training request, once
per drift episode.

The check's statistics run as a job in the training environment (`python -m shared.drift_job`), where scipy,
scikit-learn and pyarrow are; the app carries none of them. The timer submits the job, its completion event
(a RunCompleted of the same experiment as the training runs) records the outcome and publishes the drift, and
the reconcile tick asks about a check whose event never came, as it does for runs."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from shared import telemetry
from shared.deps import Deps
from shared.domain.messages import (
    DRIFT_DETECTED,
    CaseInsensitive,
    DriftDetected,
    MonitorAlert,
    RequestTraining,
)
from shared.handlers.training_requests import request_training
from shared.ports import DriftJob, OutgoingEvent, PreconditionFailed
from shared.state import cooldowns, keys, monitors, releases
from shared.state.records import Cooldown, DriftCheck, DriftCheckStatus, MonitorRun
from shared.state.store import Stored

log = logging.getLogger(__name__)

CHECK_PREFIX = "drift-"  # a drift check's job name starts so; a training run's never does
ENDED = ("Completed", "Failed", "Canceled")
SUBMIT_GRACE = timedelta(minutes=10)  # a job the backend does not know yet may still be being created


def check_drift(deps: Deps, actor: str = "drift_check") -> DriftCheck | None:
    """The timer: settle the check before (its completion event may have been lost), then submit the next one
    unless that one is still running. Returns the check submitted, None when none was."""
    settings = deps.settings
    running = settle_drift_check(deps, actor)
    if running is not None:
        deps.audit.record(
            actor,
            "drift.skipped",
            running.model,
            reason="the previous check is still running",
            check=running.check_id,
            submitted_at=running.submitted_at,
        )
        return None
    production = releases.production(deps.state, settings.model_name)
    if production is None:
        deps.audit.record(actor, "drift.skipped", "production", reason="no model in production")
        return None
    model = deps.registry.get(production.model, production.version)
    now = deps.clock()
    with telemetry.span("drift.check", model_version=f"{production.model}:{production.version}"):
        check = DriftCheck(
            check_id=f"{CHECK_PREFIX}{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}",
            model=model.id,
            deployment=production.deployment,
            dataset_version=model.tags["mlops.dataset_version"],
            status=DriftCheckStatus.RUNNING,
            submitted_at=now.isoformat(),
            trace=telemetry.traceparent(),
        )
        key = keys.drift_check(settings.model_name)
        if deps.state.create(key, check) is None and not _replace_settled(deps, check):
            return None  # another worker submitted one first
        job = DriftJob(check.check_id, model, check.deployment, check.dataset_version, check.trace)
        try:
            deps.drift_jobs.submit(job)
        except Exception as error:
            reason = f"the job could not be submitted: {type(error).__name__}: {error}"
            _close(deps, check, DriftCheckStatus.FAILED, reason)
            deps.audit.record(actor, "drift.failed", model.id, check=check.check_id, reason=reason)
            raise
    deps.audit.record(
        actor,
        "drift.submitted",
        model.id,
        check=check.check_id,
        deployment=check.deployment,
        dataset_version=check.dataset_version,
    )
    return check


def _replace_settled(deps: Deps, check: DriftCheck) -> bool:
    """Put `check` in place of a settled one; False when a running one is there (another worker's)."""
    key = keys.drift_check(deps.settings.model_name)
    stored = deps.state.get(key)
    if stored is None or stored.record.status is DriftCheckStatus.RUNNING:
        return False
    try:
        deps.state.replace(dataclasses.replace(stored, record=check))
    except PreconditionFailed:
        return False
    return True


def settle_drift_check(deps: Deps, actor: str = "reconcile") -> DriftCheck | None:
    """Ask about the check in flight: record it if its job has ended, fail it if its job is gone or past its
    deadline (MLOPS_DRIFT_JOB_TIMEOUT_SECONDS). Returns it while it still runs, else None. One state read when
    nothing runs: the reconcile tick calls this every time."""
    stored = deps.state.get(keys.drift_check(deps.settings.model_name))
    if stored is None or stored.record.status is not DriftCheckStatus.RUNNING:
        return None
    check = stored.record
    status = deps.drift_jobs.status(check.check_id)
    if status in ENDED:
        finish_drift_check(deps, check.check_id, status, None, actor)
        return None
    age = deps.clock() - datetime.fromisoformat(check.submitted_at)
    if status == "NotFound" and age > SUBMIT_GRACE:
        reason = "the backend has no such job"
    elif age.total_seconds() > deps.settings.drift.job_timeout_seconds:
        reason = f"still {status} after {deps.settings.drift.job_timeout_seconds:.0f} s"
    else:
        return check
    if _close(deps, check, DriftCheckStatus.FAILED, reason, stored):
        deps.audit.record(
            actor,
            "drift.failed",
            check.model,
            key=f"drift.failed:{check.check_id}",
            check=check.check_id,
            reason=reason,
            status=status,
        )
    return None


def is_drift_check(run_id: str) -> bool:
    return run_id.startswith(CHECK_PREFIX)


def finish_drift_check(
    deps: Deps, check_id: str, status: str, event_id: str | None, actor: str = "on_run_completed"
) -> dict[str, Any] | None:
    """Record the outcome of the check `check_id` once its job ended with `status`: its verdict (audited, and
    published as DriftDetected when anything drifted), its skip, or its failure. Returns the summary of a
    completed check; None otherwise, and for a check that is not the one in flight (a repeat, or one
    superseded after its deadline)."""
    stored = deps.state.get(keys.drift_check(deps.settings.model_name))
    if stored is None or stored.record.check_id != check_id:
        deps.audit.record(
            actor,
            "event.ignored",
            check_id,
            key=f"ignored:{event_id or check_id}",
            event_id=event_id,
            reason="not the drift check in flight",
        )
        return None
    check = stored.record
    if check.status is not DriftCheckStatus.RUNNING:
        return None  # recorded before: a redelivered event, or the tick and the event both
    with telemetry.span("drift.completed", check.trace, event_id=event_id, model_version=check.model):
        return _record_outcome(deps, stored, status, event_id, actor)


def _record_outcome(
    deps: Deps, stored: Stored[DriftCheck], status: str, event_id: str | None, actor: str
) -> dict[str, Any] | None:
    check = stored.record
    outcome = _outcome(deps, check.check_id, status)
    if isinstance(outcome, str):
        deps.audit.record(
            actor,
            "drift.failed",
            check.model,
            key=f"drift.failed:{check.check_id}",
            check=check.check_id,
            reason=outcome,
            status=status,
            event_id=event_id,
        )
        _close(deps, check, DriftCheckStatus.FAILED, outcome, stored)
        return None
    if outcome["outcome"] == "skipped":
        deps.audit.record(
            actor,
            "drift.skipped",
            check.model,
            key=f"drift.skipped:{check.check_id}",
            check=check.check_id,
            reason=outcome.get("reason"),
            window=outcome.get("window"),
        )
        _close(deps, check, DriftCheckStatus.FINISHED, None, stored)
        return None
    summary = outcome["summary"]
    deps.audit.record(
        actor,
        "drift.checked",
        check.model,
        key=f"drift.checked:{check.check_id}",
        check=check.check_id,
        drifted=summary.get("drifted"),
        drift_share=summary.get("drift_share"),
        drifted_columns=summary.get("drifted_columns"),
        schema_drift=summary.get("schema_drift"),
        prediction_drifted=_prediction_drifted(summary),
        reference_rows=summary.get("reference_rows"),
        current_rows=summary.get("current_rows"),
        window=summary.get("window"),
        report=summary.get("report_json"),
        report_html=summary.get("report_html"),
    )
    reasons = _reasons(summary)
    if reasons:
        deps.publisher.publish([_drift_event(check, summary)])
        deps.audit.record(
            actor,
            "drift.published",
            check.model,
            key=f"drift.published:{check.check_id}",
            event_type=DRIFT_DETECTED,
            reasons=reasons,
        )
    _close(deps, check, DriftCheckStatus.FINISHED, None, stored)
    return summary


def _outcome(deps: Deps, check_id: str, status: str) -> dict[str, Any] | str:
    """What the job wrote, or why there is nothing to record (the reason)."""
    if status != "Completed":
        failure = deps.drift_jobs.failure(check_id) or {}
        return str(failure.get("reason") or f"the job ended {status}")
    try:
        outcome = deps.drift_jobs.outcome(check_id)
    except LookupError as error:
        return f"the job completed without an outcome: {error}"
    if not isinstance(outcome, dict) or outcome.get("outcome") not in ("checked", "skipped"):
        return "the job's outcome is not a drift check's (no `outcome` of checked or skipped)"
    if outcome["outcome"] == "checked" and not isinstance(outcome.get("summary"), dict):
        return "the job's outcome has no summary"
    return outcome


def _close(
    deps: Deps,
    check: DriftCheck,
    status: DriftCheckStatus,
    reason: str | None,
    stored: Stored[DriftCheck] | None = None,
) -> bool:
    """Settle the check; False when another worker settled it first."""
    settled = dataclasses.replace(check, status=status, reason=reason, finished_at=deps.clock().isoformat())
    current = stored or deps.state.get(keys.drift_check(deps.settings.model_name))
    if current is None or current.record.check_id != check.check_id:
        return False
    try:
        deps.state.replace(dataclasses.replace(current, record=settled))
    except PreconditionFailed:
        return False
    return True


def _prediction_drifted(summary: dict[str, Any]) -> bool | None:
    prediction = summary.get("prediction_drift")
    return prediction.get("drifted") if isinstance(prediction, dict) else None


def _reasons(summary: dict[str, Any]) -> list[str]:
    reasons = []
    if summary.get("drifted"):
        reasons.append("data")
    if _prediction_drifted(summary):
        reasons.append("prediction")
    schema = summary.get("schema_drift")
    if isinstance(schema, dict) and schema.get("drifted"):
        reasons.append("schema")
    return reasons


def _drift_event(check: DriftCheck, summary: dict[str, Any]) -> OutgoingEvent:
    name, _, version = check.model.rpartition(":")
    return OutgoingEvent(
        event_type=DRIFT_DETECTED,
        subject=f"models/{name}/versions/{version}",
        data={
            "modelName": name,
            "modelVersion": version,
            "driftShare": summary.get("drift_share"),
            "driftedColumns": list(summary.get("drifted_columns") or ()),
            "reportUrl": summary.get("report_json"),
            "htmlReportUrl": summary.get("report_html"),
            "dataDrift": summary.get("drifted"),
            "schemaDrift": summary.get("schema_drift"),
            "predictionDrift": summary.get("prediction_drift"),
        },
        id=f"drift-detected-{check.check_id}",  # published again after a crash: the same event
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
