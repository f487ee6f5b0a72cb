"""Training: open requests become runs; completed runs are gated and registered, or rejected with reasons.

A run's record (`runs/<run id>`) is created once per dataset version and training code (the run id derives from
the manifest's hash and the code's and environment's content, `training_code`; a failed run is tried again as the
next attempt, `training_retry`), and moves starting -> running -> completing -> registered | rejected | failed
under a lease, so each step happens once whatever is redelivered, and a crashed step is finished by `reconcile`.
The lease is renewed right before each external effect (the job's submission, the model's registration): a worker
whose lease expired while it was slow stops there (`LeaseLost`) instead of acting a second time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime, timedelta

from shared import telemetry
from shared.config import Settings
from shared.deps import Deps
from shared.domain.decisions.coalescing import Timing, ready_to_start
from shared.domain.decisions.gates import GatePolicy, decide, parse_absolute_gates
from shared.domain.messages import Envelope, RunCompleted
from shared.handlers import drift_check
from shared.handlers.isolation import each
from shared.handlers.release_steps import MODEL_SHA256_TAG
from shared.handlers.retractions import retract_stale
from shared.handlers.training_code import CodeUnavailable, code_identity
from shared.handlers.training_code import run_id as training_run_id
from shared.handlers.training_retry import due_retry, failed
from shared.ports import ModelVersion, RunResults, TrainingJob
from shared.state import catalog, keys, requests
from shared.state.datasets import build_manifest, retracted_files, save_manifest
from shared.state.keys import Key
from shared.state.lease import Held, decision, lease
from shared.state.records import Run, RunRequest, RunStatus, TrainingRequest

log = logging.getLogger(__name__)
COMPLETION_GRACE = timedelta(seconds=30)


def start_training_if_due(deps: Deps, actor: str = "reconcile") -> str | None:
    """Resume half-done starts, try a failed run again once its back-off is over, else turn the open request
    into a run once it is due and nothing is in flight; return the run id started."""
    runs = []
    for stored in deps.state.open(keys.RUNS):  # a settled run is no later than an open one: see _supersede
        runs.append(stored.record)
        if stored.record.status is RunStatus.STARTING:
            _resume_start(deps, stored.key, actor)
    retry = due_retry(runs, deps.clock())
    if retry is not None:
        return _retry(retry, deps, actor)
    request = requests.open_request(deps.state)
    if request is None:
        return None
    now = deps.clock()
    timing = Timing(deps.settings.runs.quiet_period_seconds, deps.settings.runs.max_wait_seconds)
    opened, updated = datetime.fromisoformat(request.opened_at), datetime.fromisoformat(request.updated_at)
    if not ready_to_start(opened, updated, now, timing) or runs_in_flight(deps):
        return None
    retract_stale(deps, actor)  # the newest version of each name wins, a deleted file is out
    everything = catalog.entries(deps.state)
    accepted = [entry for entry in everything.values() if entry.retracted is None]
    schema = deps.state.get(keys.SCHEMA)
    if schema is None or not accepted:
        _note_waiting(request, deps, actor, "no accepted data yet")
        return None
    files = [{"name": f.name, "sha256": f.sha256, "rows": f.rows, "path": f.path} for f in accepted]
    manifest = build_manifest(files, schema.record.columns, retracted_files(everything.values()))
    try:
        identity = code_identity(deps.settings)
    except CodeUnavailable as problem:
        _note_waiting(request, deps, actor, str(problem))
        return None
    run_id = _next_run_id(deps, manifest["id"], identity)
    if run_id is None:
        # The same data, code and environment reproduce the same model; wait for something new instead.
        _note_waiting(request, deps, actor, f"dataset {manifest['id']} was already trained on with this code")
        return None
    champion = _champion(deps)
    run = Run(
        run_id=run_id,
        status=RunStatus.STARTING,
        dataset_version=manifest["id"],
        manifest=manifest,
        request=RunRequest(request.id, request.causes, request.events),
        champion=champion.id if champion else None,
        submitted_at=now.isoformat(),
        code=identity,
    )
    try:
        return _start(run, deps, actor)
    finally:
        _supersede([r for r in runs if r.retry_at is not None], deps, run_id)


def _retry(failed_run: Run, deps: Deps, actor: str) -> str | None:
    """The next try at what `failed_run` was for: its data and request, today's code and champion."""
    try:
        identity = code_identity(deps.settings)
    except CodeUnavailable as problem:
        log.warning(
            "a retry waits for the training code", extra={"run_id": failed_run.run_id, "reason": str(problem)}
        )
        return None
    run_id = _next_run_id(deps, failed_run.dataset_version, identity)
    if run_id is None:
        _supersede([failed_run], deps)  # answered already
        return None
    try:
        champion = _champion(deps)
        retry = Run(
            run_id=run_id,
            status=RunStatus.STARTING,
            dataset_version=failed_run.dataset_version,
            manifest=failed_run.manifest,
            request=failed_run.request,
            champion=champion.id if champion else None,
            submitted_at=deps.clock().isoformat(),
            code=identity,
            attempt=failed_run.attempt + 1,
        )
        return _start(retry, deps, actor, retry_of=failed_run.run_id)
    finally:
        _supersede([failed_run], deps, run_id)


def _supersede(failed: list[Run], deps: Deps, by: str | None = None) -> None:
    """Failed runs a later run (`by`, once its record exists) answers are tried no more: their retry is off,
    and they are settled."""
    if by is not None and not deps.state.exists(keys.run(by)):
        return  # the later run was not created: the failure is still to be tried again
    for run in failed:
        with lease(deps, keys.run(run.run_id)) as held:
            if held is not None and held.record.retry_at is not None:
                held.change(dataclasses.replace(held.record, retry_at=None))


def _start(run: Run, deps: Deps, actor: str, **detail: object) -> str | None:
    """Create the run's record (once, whoever else tries) and launch it; the run id, or None if another worker
    started this very run. The run's trace begins here."""
    with telemetry.span("training.start", run_id=run.run_id, dataset_version=run.dataset_version):
        return _create_and_launch(
            dataclasses.replace(run, trace=telemetry.traceparent()), deps, actor, **detail
        )


def _create_and_launch(run: Run, deps: Deps, actor: str, **detail: object) -> str | None:
    run_id, manifest, request = run.run_id, run.manifest, run.request
    started = decision(
        actor,
        "training.started",
        run_id,
        f"runs/{run_id}:started",
        dataset_version=manifest["id"],
        files=len(manifest["files"]),
        rows=manifest["rows"],
        causes=list(request.causes),
        events=list(request.events),
        champion=run.champion,
        code=run.code,
        attempt=run.attempt,
        **detail,
    )
    created = False

    def create() -> tuple[Run, tuple]:
        nonlocal created
        created = True
        return run, (started,)

    with lease(deps, keys.run(run_id), create=create) as held:
        if held is None or not created:
            return None  # another worker started this very run
        _launch(held, deps, actor)
    return run_id


def _resume_start(deps: Deps, key: Key[Run], actor: str) -> None:
    """A start a crashed worker left half-done, or whose submit failed: try it again (`chase_runs` times it out
    after MLOPS_RUN_START_TIMEOUT_SECONDS)."""
    try:
        with lease(deps, key) as held:
            if held is not None and held.record.status is RunStatus.STARTING:
                _launch(held, deps, actor)
    except Exception:
        # Recorded on the run by `_launch`; one run that cannot start must not stop the others.
        log.exception("could not start a run", extra={"run": key.path})


def _launch(held: Held[Run], deps: Deps, actor: str = "reconcile") -> None:
    """Every step of starting a run; each is harmless to repeat."""
    held.renew()
    run = held.record
    manifest = run.manifest
    save_manifest(deps.blobs, deps.settings.containers.datasets, manifest)
    catalog.mark_joined(deps.state, [f["sha256"] for f in manifest["files"]], manifest["id"])
    requests.consume(deps.state, run.request.events)
    held.flush()
    champion = None
    if run.champion:
        name, _, version = run.champion.rpartition(":")
        champion = deps.registry.get(name, version)
    job = TrainingJob(
        run_id=run.run_id,
        dataset_version=manifest["id"],
        manifest=manifest,
        config={
            **deps.settings.training.as_job_config(),
            **deps.settings.slices.as_job_config(),
            "code": {**deps.settings.training_code.job_config(), "identity": run.code},
        },
        champion=champion,
        tags={"mlops.request": run.request.id, "mlops.attempt": str(run.attempt)},
        trace=run.trace,
    )
    held.renew()
    try:
        deps.jobs.submit(job)
    except Exception as error:
        reason = f"the job could not be submitted: {type(error).__name__}: {error}"
        refused = decision(actor, "run.submit_failed", run.run_id, f"{held.key}:submit_failed", reason=reason)
        held.change(dataclasses.replace(run, failure={"stage": "submit", "reason": reason}), refused)
        raise
    held.change(dataclasses.replace(run, status=RunStatus.RUNNING, failure=None))


def on_run_completed(message: RunCompleted, deps: Deps, actor: str = "on_run_completed") -> None:
    stored = deps.state.get(keys.run(message.run_id))
    parent = stored.record.trace if stored is not None else None
    with telemetry.span("training.completed", parent, event_id=message.envelope.id, run_id=message.run_id):
        _on_run_completed(message, deps, actor)


def _on_run_completed(message: RunCompleted, deps: Deps, actor: str) -> None:
    key = keys.run(message.run_id)
    with lease(deps, key) as held:
        if held is not None:
            _complete(held, message, deps, actor)
            return
    if not deps.state.exists(key):
        # the drift check's job, which runs where training runs
        if drift_check.is_drift_check(message.run_id):
            drift_check.finish_drift_check(deps, message.run_id, message.status, message.envelope.id, actor)
            return
        deps.audit.record(
            actor,
            "event.ignored",
            message.run_id,
            key=f"ignored:{message.envelope.id}",
            event_id=message.envelope.id,
            reason="run was not started by this system",
        )
    # else another worker is on it


def _complete(held: Held[Run], message: RunCompleted, deps: Deps, actor: str) -> None:
    key = held.key
    run = held.record
    if not run.status.in_flight:
        return
    event_id = message.envelope.id
    now = deps.clock().isoformat()
    if message.status != "Completed":
        failure = deps.jobs.failure(message.run_id)
        finished, decisions = failed(
            dataclasses.replace(run, backend_status=message.status, failure=failure),
            deps,
            actor,
            "run.failed",
            event_id=event_id,
            status=message.status,
            **({"reason": failure.get("reason"), "stage": failure.get("stage")} if failure else {}),
        )
        held.change(finished, *decisions)
        return
    held.change(dataclasses.replace(run, status=RunStatus.COMPLETING))
    results = deps.jobs.results(message.run_id)
    evaluation = results.evaluation
    gates = decide(
        evaluation,
        parse_absolute_gates(deps.settings.gates.absolute),
        deps.settings.gates.min_improvement,
        policy=gate_policy(deps.settings),
    )
    outcome = dataclasses.replace(
        held.record,
        finished_at=now,
        completion_event=event_id,
        gates=gates.as_dict(),
        evaluation=evaluation,
    )
    if not gates.passed:
        rejected = decision(
            actor,
            "challenger.rejected",
            message.run_id,
            f"{key}:rejected",
            event_id=event_id,
            reasons=gates.reasons,
            gates=gates.as_dict()["verdicts"],
            challenger=evaluation["challenger"],
            champion=evaluation.get("champion"),
        )
        held.change(dataclasses.replace(outcome, status=RunStatus.REJECTED), rejected)
        return
    model = _register(held, outcome, results, evaluation, gates.as_dict(), deps)
    registered = decision(
        actor,
        "model.registered",
        model.id,
        f"{key}:registered",
        event_id=event_id,
        run_id=message.run_id,
        dataset_version=run.dataset_version,
        metrics=evaluation["challenger"],
        champion_metrics=evaluation.get("champion"),
        gates=gates.as_dict()["verdicts"],
    )
    held.change(
        dataclasses.replace(outcome, status=RunStatus.REGISTERED, model_version=model.version), registered
    )


def _register(
    held: Held[Run], run: Run, results: RunResults, evaluation: dict, gates: dict, deps: Deps
) -> ModelVersion:
    """The run's model version: the one registered already (by an earlier delivery, or a worker whose lease
    expired mid-registration), else a new one. Should two registrations have raced, the lowest version of the
    run is the run's: the later one is never released (`release.on_model_registered` checks)."""
    name = deps.settings.model_name
    existing = deps.registry.find_by_run(name, run.run_id)
    if existing is not None:
        return existing
    held.renew()  # registering takes long enough for a lease to expire: never register without one
    model = deps.registry.register(
        name, results, lineage_tags(run, evaluation, gates, run.completion_event or "")
    )
    return deps.registry.find_by_run(name, run.run_id) or model


def gate_policy(settings: Settings) -> GatePolicy:
    """The configured gates beyond the absolute floors and the minimum improvement."""
    return GatePolicy(
        require_significance=settings.gates.require_significance,
        confidence_level=settings.training.confidence_level,
        secondary_tolerance=settings.gates.secondary_tolerance,
        slice_tolerance=settings.slices.tolerance,
        fairness_limit=settings.slices.fairness_max_difference,
    )


def lineage_tags(run: Run, evaluation: dict, gates: dict, event_id: str) -> dict[str, str]:
    """Registry tags are strings; structured values are JSON so lineage can be read back whole."""
    return {
        "mlops.run_id": run.run_id,
        "mlops.dataset_version": run.dataset_version,
        "mlops.causes": ",".join(run.request.causes),
        "mlops.trigger_events": json.dumps(list(run.request.events)),
        "mlops.run_completed_event": event_id,
        "mlops.champion": run.champion or "",
        "mlops.metrics": json.dumps(evaluation["challenger"], sort_keys=True),
        "mlops.champion_metrics": json.dumps(evaluation.get("champion"), sort_keys=True),
        "mlops.gates": json.dumps(gates["verdicts"], sort_keys=True),
        "mlops.primary_metric": evaluation["primary_metric"],
        "mlops.comparison": json.dumps(evaluation.get("comparison"), sort_keys=True),
        "mlops.code_version": str(evaluation.get("code_version", "")),
        "mlops.code": json.dumps(evaluation.get("code"), sort_keys=True),
        MODEL_SHA256_TAG: str(evaluation.get("model_sha256", "")),
    }


def _next_run_id(deps: Deps, dataset_version: str, identity: dict) -> str | None:
    """The run that trains this data with this code: a new one, or the next attempt after failed ones (a retry
    and a new trigger alike); None when one already ran (or runs) to an answer."""
    attempt = 1
    while True:
        run_id = training_run_id(dataset_version, identity, attempt)
        stored = deps.state.get(keys.run(run_id))
        if stored is None:
            return run_id
        if stored.record.status is not RunStatus.FAILED:
            return None
        attempt += 1


def runs_in_flight(deps: Deps) -> list[Run]:
    """Runs on their way (a stuck one is not: it is set aside), from the index of open work."""
    return [s.record for s in deps.state.open(keys.RUNS) if s.record.status.in_flight]


def chase_runs(deps: Deps, actor: str = "reconcile") -> None:
    """Handle runs whose completion event never came, or whose handler crashed; time out the stuck ones."""
    limit = timedelta(seconds=deps.settings.runs.timeout_seconds)
    start_limit = timedelta(seconds=deps.settings.runs.start_timeout_seconds)

    def chase(run: Run) -> None:
        age = deps.clock() - datetime.fromisoformat(run.submitted_at)
        if run.status is RunStatus.STARTING:
            if age > start_limit:  # else start_training_if_due resumes it
                why = (run.failure or {}).get("reason") or "the start never finished"
                _time_out(run, "NotSubmitted", deps, actor, f"not submitted within {start_limit}: {why}")
            return
        status = deps.jobs.status(run.run_id)
        if status in ("Completed", "Failed", "Canceled") and age > COMPLETION_GRACE:
            envelope = Envelope(f"reconcile:{run.run_id}", "reconcile", "", "", deps.clock(), {})
            try:
                on_run_completed(RunCompleted(envelope, run.run_id, "", status, {}, {}), deps, actor)
            except Exception:
                if age <= limit:
                    raise  # tried again next tick, until the timeout
                log.exception("could not handle a finished run", extra={"run_id": run.run_id})
            else:
                return
        if status == "NotFound":
            _time_out(run, status, deps, actor, "the training backend does not know the job")
        elif age > limit:
            _time_out(run, status, deps, actor, f"{run.status} for longer than {limit}")

    # One broken run does not stop the others.
    each(runs_in_flight(deps), chase, lambda run: f"runs/{run.run_id}")


def _time_out(run: Run, status: str, deps: Deps, actor: str, reason: str) -> None:
    with lease(deps, keys.run(run.run_id)) as held:
        if held is None or not held.record.status.in_flight:
            return
        record, decisions = failed(
            dataclasses.replace(held.record, backend_status=status),
            deps,
            actor,
            "run.timed_out",
            backend_status=status,
            submitted_at=run.submitted_at,
            reason=reason,
        )
        held.change(record, *decisions)


def _champion(deps: Deps) -> ModelVersion | None:
    production = deps.state.get(keys.production(deps.settings.model_name))
    if production is None:
        return None
    return deps.registry.get(production.record.model, production.record.version)


def _note_waiting(request: TrainingRequest, deps: Deps, actor: str, reason: str) -> None:
    if requests.note_waiting(deps.state, reason):
        deps.audit.record(actor, "training.waiting", request.id, reason=reason, causes=list(request.causes))
