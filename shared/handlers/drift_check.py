"""The scheduled drift check, which compares production's inputs with the champion's training data, and its life
as a job.

The check's statistics run as a job in the training environment (`python -m shared.drift_job`), where scipy,
scikit-learn and pyarrow are; the app carries none of them. The timer submits the job and keeps a `DriftCheck`
record while it runs. Its completion event (a RunCompleted of the same experiment as the training runs) records
the outcome and publishes the drift. The reconcile tick asks about a check whose event never came, as it does
for runs, and so makes good what a lost event, a failed or lost submit, or a crash left undone:

- a job the backend does not know after SUBMIT_GRACE is submitted again (the check id is the job's name, so a
  submit whose answer was lost does not make a second job);
- a job still running past MLOPS_DRIFT_JOB_TIMEOUT_SECONDS is cancelled and the check closed TIMED_OUT, which
  frees the next check; its late end, when it comes, is recorded (`drift.late`) and acted on no further;
- an ended job whose outcome cannot be recorded (a publish refused) is tried again on every tick, and closed
  FAILED with the reason once it is RECORD_GRACE past its deadline, so that it does not block the checks after it.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from shared import telemetry
from shared.deps import Deps
from shared.domain.messages import DRIFT_DETECTED
from shared.ports import DriftJob, ModelVersion, OutgoingEvent, PreconditionFailed
from shared.state import keys, releases
from shared.state.records import DriftCheck, DriftCheckStatus
from shared.state.store import Stored

log = logging.getLogger(__name__)

CHECK_PREFIX = "drift-"  # a drift check's job name starts so; a training run's never does
ENDED = ("Completed", "Failed", "Canceled")
SUBMIT_GRACE = timedelta(minutes=10)  # a job the backend does not know yet may still be being created
RECORD_GRACE = timedelta(hours=1)  # past the deadline, how long an ended job's outcome may fail to record


def is_drift_check(run_id: str) -> bool:
    return run_id.startswith(CHECK_PREFIX)


def check_drift(deps: Deps, actor: str = "drift_check") -> DriftCheck | None:
    """The timer: settle the check before (its completion event may have been lost), then submit the next one
    unless that one is still running. Returns the check recorded (submitted, or to be submitted again by the
    tick when the backend refused it), None when none was."""
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
    serving = f"{production.model}:{production.version}"
    if model is None or "mlops.dataset_version" not in model.tags:
        reason = (
            "the champion is not in the registry"
            if model is None
            else "the champion has no mlops.dataset_version tag: its training data is unknown"
        )
        deps.audit.record(actor, "drift.skipped", serving, reason=reason)
        return None
    now = deps.clock()
    with telemetry.span("drift.check", model_version=serving):
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
        _submit(deps, check, _job(check, model), actor)
    return check


def _replace_settled(deps: Deps, check: DriftCheck) -> bool:
    """Put `check` in place of a settled one; False when a running one is there (another worker's)."""
    key = keys.drift_check(deps.settings.model_name)
    stored = deps.state.get(key)
    if stored is None or stored.record.status is DriftCheckStatus.RUNNING:
        return False
    return _swap(deps, stored, check)


def _job(check: DriftCheck, model: ModelVersion) -> DriftJob:
    return DriftJob(check.check_id, model, check.deployment, check.dataset_version, check.trace)


def _submit(deps: Deps, check: DriftCheck, job: DriftJob, actor: str) -> None:
    """Submit the check's job. A refusal leaves the check running, for the tick to submit again."""
    try:
        deps.drift_jobs.submit(job)
    except Exception as error:
        reason = f"the job could not be submitted: {type(error).__name__}: {error}"
        log.warning("drift check submit failed", extra={"check_id": check.check_id, "reason": reason})
        _audit(deps, actor, "drift.submit_failed", check, reason=reason)  # the first; later ones are logged
        return
    _audit(
        deps,
        actor,
        "drift.submitted",
        check,
        deployment=check.deployment,
        dataset_version=check.dataset_version,
    )


def settle_drift_check(deps: Deps, actor: str = "reconcile") -> DriftCheck | None:
    """Ask about the check in flight: record it if its job has ended, submit it again if the backend does not
    know it, cancel it past its deadline. Returns it while it still runs, else None. One state read when nothing
    runs: the reconcile tick calls this every time."""
    stored = deps.state.get(keys.drift_check(deps.settings.model_name))
    if stored is None or stored.record.status is not DriftCheckStatus.RUNNING:
        return None
    check = stored.record
    status = deps.drift_jobs.status(check.check_id)
    age = deps.clock() - datetime.fromisoformat(check.submitted_at)
    overdue = age - timedelta(seconds=deps.settings.drift.job_timeout_seconds)
    if status in ENDED:
        _settle_ended(deps, stored, status, overdue, actor)
        return None
    if overdue > timedelta(0):
        _time_out(deps, stored, status, actor)
        return None
    if status == "NotFound" and age > SUBMIT_GRACE:
        name, _, version = check.model.rpartition(":")
        model = deps.registry.get(name, version)
        if model is None:
            _fail(
                deps, stored, DriftCheckStatus.FAILED, f"{check.model} is no longer registered", status, actor
            )
            return None
        _submit(deps, check, _job(check, model), actor)
    return check


def _settle_ended(
    deps: Deps, stored: Stored[DriftCheck], status: str, overdue: timedelta, actor: str
) -> None:
    try:
        finish_drift_check(deps, stored.record.check_id, status, None, actor)
    except Exception as error:
        if overdue <= RECORD_GRACE:
            raise  # the next tick tries again
        reason = (
            f"the job ended {status} but its outcome could not be recorded by "
            f"{RECORD_GRACE.total_seconds():.0f} s past the deadline: {type(error).__name__}: {error}"
        )
        _fail(deps, deps.state.get(stored.key) or stored, DriftCheckStatus.FAILED, reason, status, actor)


def _time_out(deps: Deps, stored: Stored[DriftCheck], status: str, actor: str) -> None:
    """Cancel the overdue job and close the check; remember it, so that its late end is recorded."""
    check = stored.record
    timeout = deps.settings.drift.job_timeout_seconds
    if status == "NotFound":
        reason, cancel = f"the backend had no such job after {timeout:.0f} s", None
    else:
        reason, cancel = f"still {status} after {timeout:.0f} s", "cancelled"
        try:
            deps.drift_jobs.cancel(check.check_id)
        except Exception as error:  # the check still closes: the late end, if it comes, is recorded
            cancel = f"the cancel failed: {type(error).__name__}: {error}"
    overdue = dataclasses.replace(check, status=DriftCheckStatus.TIMED_OUT, reason=reason)
    deps.state.put(keys.overdue_drift_check(check.check_id), overdue)
    _fail(deps, stored, DriftCheckStatus.TIMED_OUT, reason, status, actor, cancel=cancel)


def _fail(
    deps: Deps,
    stored: Stored[DriftCheck],
    status: DriftCheckStatus,
    reason: str,
    job_status: str,
    actor: str,
    **detail: Any,
) -> None:
    check = stored.record
    if _close(deps, check, status, reason, stored):
        _audit(deps, actor, "drift.failed", check, reason=reason, status=job_status, **detail)


def finish_drift_check(
    deps: Deps, check_id: str, status: str, event_id: str | None, actor: str = "on_run_completed"
) -> dict[str, Any] | None:
    """Record the outcome of the check `check_id` once its job ended with `status`: its verdict (audited, and
    published as DriftDetected when anything drifted), its skip, or its failure. Returns the summary of a
    completed check; None otherwise, and for a check that is not the one in flight (a repeat, a check closed
    past its deadline, whose late end is recorded only, or a job that is not ours)."""
    stored = deps.state.get(keys.drift_check(deps.settings.model_name))
    if stored is None or stored.record.check_id != check_id:
        _not_in_flight(deps, check_id, status, event_id, actor)
        return None
    check = stored.record
    if check.status is DriftCheckStatus.TIMED_OUT:
        _record_late(deps, check, status, event_id, actor)
        return None
    if check.status is not DriftCheckStatus.RUNNING:
        return None  # recorded before: a redelivered event, or the tick and the event both
    with telemetry.span("drift.completed", check.trace, event_id=event_id, model_version=check.model):
        return _record_outcome(deps, stored, status, event_id, actor)


def _not_in_flight(deps: Deps, check_id: str, status: str, event_id: str | None, actor: str) -> None:
    overdue = deps.state.get(keys.overdue_drift_check(check_id))
    if overdue is not None:
        _record_late(deps, overdue.record, status, event_id, actor)
        return
    deps.audit.record(
        actor,
        "event.ignored",
        check_id,
        key=f"ignored:{event_id or check_id}",
        event_id=event_id,
        reason="not the drift check in flight",
    )


def _record_late(deps: Deps, check: DriftCheck, status: str, event_id: str | None, actor: str) -> None:
    """The end of a job closed past its deadline: what it found, for the record. Nothing is published (the next
    check measures again, on newer traffic)."""
    outcome = _outcome(deps, check.check_id, status)
    found: dict[str, Any] = (
        {"reason": outcome} if isinstance(outcome, str) else {"outcome": outcome["outcome"]}
    )
    if not isinstance(outcome, str) and outcome["outcome"] == "checked":
        summary = outcome["summary"]
        found |= {"drifted": summary.get("drifted"), "drift_share": summary.get("drift_share")}
        found |= {"report": summary.get("report_json"), "reasons": _reasons(summary)}
    _audit(
        deps,
        actor,
        "drift.late",
        check,
        status=status,
        event_id=event_id,
        closed_because=check.reason,
        **found,
    )
    deps.state.delete(keys.overdue_drift_check(check.check_id))  # its end is seen: a repeat is ignored


def _record_outcome(
    deps: Deps, stored: Stored[DriftCheck], status: str, event_id: str | None, actor: str
) -> dict[str, Any] | None:
    check = stored.record
    outcome = _outcome(deps, check.check_id, status)
    if isinstance(outcome, str):
        _audit(deps, actor, "drift.failed", check, reason=outcome, status=status, event_id=event_id)
        _close(deps, check, DriftCheckStatus.FAILED, outcome, stored)
        return None
    if outcome["outcome"] == "skipped":
        _audit(
            deps, actor, "drift.skipped", check, reason=outcome.get("reason"), window=outcome.get("window")
        )
        _close(deps, check, DriftCheckStatus.FINISHED, None, stored)
        return None
    summary = outcome["summary"]
    _audit(
        deps,
        actor,
        "drift.checked",
        check,
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
    replaced_by = _replaced_by(deps, check)
    if reasons and replaced_by:
        # what drifted is the traffic of a model no longer served: retraining on it would answer nothing
        deps.audit.record(
            actor,
            "drift.not_published",
            check.model,
            key=f"drift.not_published:{check.check_id}",
            reasons=reasons,
            reason=f"{check.model} is no longer in production ({replaced_by} is)",
        )
    elif reasons:
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


def _replaced_by(deps: Deps, check: DriftCheck) -> str | None:
    """The model in production now when it is not the one the check compared, else None."""
    production = releases.production(deps.state, deps.settings.model_name)
    if production is None:
        return None
    serving = f"{production.model}:{production.version}"
    return serving if serving != check.model else None


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
    return _swap(deps, current, settled)


def _swap(deps: Deps, current: Stored[DriftCheck], record: DriftCheck) -> bool:
    """Write `record` over `current` unless the record changed since it was read (another worker's write)."""
    try:
        deps.state.replace(dataclasses.replace(current, record=record))
    except PreconditionFailed:
        return False
    return True


def _audit(deps: Deps, actor: str, action: str, check: DriftCheck, **detail: Any) -> None:
    """One decision about the check, recorded once (a redelivery or the tick and the event both: one entry)."""
    deps.audit.record(
        actor, action, check.model, key=f"{action}:{check.check_id}", check=check.check_id, **detail
    )


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
