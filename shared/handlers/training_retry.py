"""What follows a failed run: the next try after a back-off while its request has tries left
(`MLOPS_RUN_MAX_ATTEMPTS`), else failed for good with the reason in the audit log.

A retry is the next attempt of the same run key (`<run id>-<n>`, `training_code.run_id`), answers the same
request and counts one more try. Only the latest run is ever retried: a run started after a failure (new data,
a retrain request, new code, or the retry itself) answers what the failed run was for, so a failure is retried
once at most, whatever crashed in between. A new trigger after a run failed for good starts a new attempt with
its tries counted afresh.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from shared.deps import Deps
from shared.ports import OutgoingEvent
from shared.state.lease import decision
from shared.state.records import Run, RunStatus
from shared.state.store import Decision

RUN_FAILED = "MLOps.RunFailed"


def failed(run: Run, deps: Deps, actor: str, action: str, **detail: Any) -> tuple[Run, tuple[Decision, ...]]:
    """The run failed (`action` is `run.failed` or `run.timed_out`): its record and the decisions to record,
    the failure and then either the retry scheduled or why there is none."""
    now = deps.clock()
    limit = deps.settings.runs.max_attempts
    subject = f"runs/{run.run_id}"
    what = decision(
        actor, action, run.run_id, f"{subject}:{action.removeprefix('run.')}", attempt=run.attempt, **detail
    )
    if run.attempt < limit:
        wait = deps.settings.runs.retry_backoff_seconds * 2 ** (run.attempt - 1)
        retry_at = (now + timedelta(seconds=wait)).isoformat()
        then = decision(
            actor,
            "run.retry_scheduled",
            run.run_id,
            f"{subject}:retry_scheduled",
            attempt=run.attempt,
            max_attempts=limit,
            retry_at=retry_at,
            backoff_seconds=wait,
        )
    else:
        retry_at = None
        _announce_failure(run, deps, action, limit, detail)
        then = decision(
            actor,
            "run.given_up",
            run.run_id,
            f"{subject}:given_up",
            attempt=run.attempt,
            max_attempts=limit,
            reason=f"try {run.attempt} of {limit} at request {run.request.id} failed too ({action}); "
            "a new trigger (new data, a retrain request, new code) starts a new attempt",
        )
    record = dataclasses.replace(run, status=RunStatus.FAILED, finished_at=now.isoformat(), retry_at=retry_at)
    return record, (what, then)


def _announce_failure(run: Run, deps: Deps, action: str, limit: int, detail: dict[str, Any]) -> None:
    """`MLOps.RunFailed`, for people and other systems: the run failed for good. Published before the record
    changes, with the run's own id, so a handling retried after a crash announces the same event again."""
    data = {
        "runId": run.run_id,
        "datasetVersion": run.dataset_version,
        "attempt": run.attempt,
        "maxAttempts": limit,
        "failure": action.removeprefix("run."),
        "reason": detail.get("reason") or (run.failure or {}).get("reason"),
        "stage": detail.get("stage") or (run.failure or {}).get("stage"),
        "status": detail.get("status") or detail.get("backend_status") or run.backend_status,
        "request": run.request.id,
    }
    event = OutgoingEvent(RUN_FAILED, f"runs/{run.run_id}", data, id=f"runs/{run.run_id}:given_up")
    deps.publisher.publish([event])


def due_retry(runs: list[Run], now: datetime) -> Run | None:
    """The failed run to try again now: the latest run, when it failed with tries left and its back-off is over
    (and nothing is in flight)."""
    if not runs or any(run.status.in_flight for run in runs):
        return None
    latest = max(runs, key=lambda run: (datetime.fromisoformat(run.submitted_at), run.attempt))
    if latest.status is not RunStatus.FAILED or latest.retry_at is None:
        return None
    return latest if datetime.fromisoformat(latest.retry_at) <= now else None
