"""Training: open requests become runs; completed runs are gated and registered, or rejected with reasons.

A run's record (`runs/<run id>`) is created once per dataset version (the run id derives from the manifest's
hash), and moves starting -> running -> completing -> registered | rejected | failed under a lease, so each
step happens once whatever is redelivered, and a crashed step is finished by `reconcile`.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from shared.deps import Deps
from shared.domain.decisions.coalescing import Timing, ready_to_start
from shared.domain.decisions.gates import decide, parse_absolute_gates, policy_from
from shared.domain.messages import Envelope, RunCompleted
from shared.handlers.data import SCHEMA_KEY
from shared.ports import ModelVersion, TrainingJob
from shared.state import lease as workflow
from shared.state.datasets import build_manifest, save_manifest
from shared.state.requests import catalog, consume, mark_joined, note_waiting, open_request
from shared.state.store import Document

log = logging.getLogger(__name__)
PRODUCTION_KEY = "releases/production"
IN_FLIGHT = ("starting", "running", "completing")
FINAL = ("registered", "rejected", "failed")
COMPLETION_GRACE = timedelta(seconds=30)


def start_training_if_due(deps: Deps, actor: str = "reconcile") -> str | None:
    """Turn the open request into a run once it is due and nothing is in flight; return the run id started."""
    for run in deps.state.list("runs/"):
        if run.body["status"] == "starting" and (document := workflow.acquire(deps, run.key)):
            with workflow.held(deps, document):
                _launch(document, deps)  # a start a crashed worker left half-done
    request = open_request(deps)
    if request is None:
        return None
    now = deps.clock()
    timing = Timing(deps.settings.runs.quiet_period_seconds, deps.settings.runs.max_wait_seconds)
    opened, updated = (datetime.fromisoformat(request[k]) for k in ("opened_at", "updated_at"))
    if not ready_to_start(opened, updated, now, timing) or runs_in_flight(deps):
        return None
    accepted = catalog(deps)
    schema = deps.state.get(SCHEMA_KEY)
    if schema is None or not accepted:
        _note_waiting(request, deps, actor, "no accepted data yet")
        return None
    files = [{k: f[k] for k in ("name", "sha256", "rows", "path")} for f in accepted.values()]
    manifest = build_manifest(files, schema.body["columns"])
    run_id = f"train-{manifest['id'].removeprefix('ds-')}"
    if deps.state.get(f"runs/{run_id}") is not None:
        # Retraining on identical data reproduces the same model; wait for new data instead.
        _note_waiting(request, deps, actor, f"dataset {manifest['id']} was already trained on")
        return None
    champion = _champion(deps)
    run = {
        "run_id": run_id,
        "status": "starting",
        "dataset_version": manifest["id"],
        "manifest": manifest,
        "request": {k: request[k] for k in ("id", "causes", "events")},
        "champion": champion.id if champion else None,
        "submitted_at": now.isoformat(),
    }
    started = workflow.decision(
        actor,
        "training.started",
        run_id,
        f"{run_id}:started",
        dataset_version=manifest["id"],
        files=len(files),
        rows=manifest["rows"],
        causes=request["causes"],
        events=request["events"],
        champion=run["champion"],
    )
    document = workflow.create(deps, f"runs/{run_id}", run, started)
    if document is None:
        return None  # another worker started this very run
    with workflow.held(deps, document):
        _launch(document, deps)
    return run_id


def _launch(document: Document, deps: Deps) -> None:
    """Every step of starting a run; each is harmless to repeat."""
    run = document.body
    manifest = run["manifest"]
    save_manifest(deps.blobs, deps.settings.containers.datasets, manifest)
    mark_joined(deps, [f["sha256"] for f in manifest["files"]], manifest["id"])
    consume(deps, run["request"]["events"])
    document = workflow.flush(deps, document)
    champion = None
    if run["champion"]:
        name, _, version = run["champion"].rpartition(":")
        champion = deps.registry.get(name, version)
    deps.jobs.submit(
        TrainingJob(
            run_id=run["run_id"],
            dataset_version=manifest["id"],
            manifest=manifest,
            config=deps.settings.training.as_job_config(),
            champion=champion,
            tags={"mlops.request": run["request"]["id"]},
        )
    )
    workflow.finish(deps, document, {"status": "running"})


def on_run_completed(message: RunCompleted, deps: Deps, actor: str = "on_run_completed") -> None:
    key = f"runs/{message.run_id}"
    document = workflow.acquire(deps, key)
    if document is None:
        if deps.state.get(key) is None:
            deps.audit.record(
                actor,
                "event.ignored",
                message.run_id,
                key=f"ignored:{message.envelope.id}",
                event_id=message.envelope.id,
                reason="run was not started by this system",
            )
        return  # unknown run, or another worker is on it
    with workflow.held(deps, document):
        _complete(document, message, deps, actor)


def _complete(document: Document, message: RunCompleted, deps: Deps, actor: str) -> None:
    key = document.key
    run = document.body
    if run["status"] in FINAL:
        workflow.release(deps, document)
        return
    event_id = message.envelope.id
    now = deps.clock().isoformat()
    if message.status != "Completed":
        failed = workflow.decision(
            actor, "run.failed", message.run_id, f"{key}:failed", event_id=event_id, status=message.status
        )
        workflow.finish(
            deps, document, {"status": "failed", "finished_at": now, "backend_status": message.status}, failed
        )
        return
    document = workflow.commit(deps, document, {"status": "completing"})
    results = deps.jobs.results(message.run_id)
    evaluation = results.evaluation
    gates = decide(
        evaluation,
        parse_absolute_gates(deps.settings.gates.absolute),
        deps.settings.gates.min_improvement,
        policy=policy_from(deps.settings),
    )
    outcome = {
        "finished_at": now,
        "completion_event": event_id,
        "gates": gates.as_dict(),
        "evaluation": evaluation,
    }
    if not gates.passed:
        rejected = workflow.decision(
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
        workflow.finish(deps, document, {**outcome, "status": "rejected"}, rejected)
        return
    tags = lineage_tags(run, evaluation, gates.as_dict(), event_id)
    model = deps.registry.register(deps.settings.model_name, results, tags)  # idempotent by run id
    registered = workflow.decision(
        actor,
        "model.registered",
        model.id,
        f"{key}:registered",
        event_id=event_id,
        run_id=message.run_id,
        dataset_version=run["dataset_version"],
        metrics=evaluation["challenger"],
        champion_metrics=evaluation.get("champion"),
        gates=gates.as_dict()["verdicts"],
    )
    workflow.finish(
        deps, document, {**outcome, "status": "registered", "model_version": model.version}, registered
    )


def lineage_tags(
    run: dict[str, Any], evaluation: dict[str, Any], gates: dict[str, Any], event_id: str
) -> dict[str, str]:
    """Registry tags are strings; structured values are JSON so lineage can be read back whole."""
    request = run["request"]
    return {
        "mlops.run_id": run["run_id"],
        "mlops.dataset_version": run["dataset_version"],
        "mlops.causes": ",".join(request["causes"]),
        "mlops.trigger_events": json.dumps(request["events"]),
        "mlops.run_completed_event": event_id,
        "mlops.champion": run.get("champion") or "",
        "mlops.metrics": json.dumps(evaluation["challenger"], sort_keys=True),
        "mlops.champion_metrics": json.dumps(evaluation.get("champion"), sort_keys=True),
        "mlops.gates": json.dumps(gates["verdicts"], sort_keys=True),
        "mlops.primary_metric": evaluation["primary_metric"],
        "mlops.comparison": json.dumps(evaluation.get("comparison"), sort_keys=True),
        "mlops.code_version": str(evaluation.get("code_version", "")),
    }


def runs_in_flight(deps: Deps) -> list[dict[str, Any]]:
    return [doc.body for doc in deps.state.list("runs/") if doc.body["status"] in IN_FLIGHT]


def chase_runs(deps: Deps, actor: str = "reconcile") -> None:
    """Handle runs whose completion event never came, or whose handler crashed; time out the stuck ones."""
    limit = timedelta(seconds=deps.settings.runs.timeout_seconds)
    for run in runs_in_flight(deps):
        if run["status"] == "starting":
            continue  # start_training_if_due resumes it
        status = deps.jobs.status(run["run_id"])
        age = deps.clock() - datetime.fromisoformat(run["submitted_at"])
        if status in ("Completed", "Failed", "Canceled") and age > COMPLETION_GRACE:
            envelope = Envelope(f"reconcile:{run['run_id']}", "reconcile", "", "", deps.clock(), {})
            try:
                on_run_completed(RunCompleted(envelope, run["run_id"], "", status, {}, {}), deps, actor)
            except Exception:
                # One broken run must not stop the tick; it is tried again next tick, until the timeout.
                log.exception("could not handle a finished run", extra={"run_id": run["run_id"]})
            else:
                continue
        if status == "NotFound" or age > limit:
            _time_out(run, status, deps, actor)


def _time_out(run: dict[str, Any], status: str, deps: Deps, actor: str) -> None:
    key = f"runs/{run['run_id']}"
    document = workflow.acquire(deps, key)
    if document is None or document.body["status"] not in IN_FLIGHT:
        return
    timed_out = workflow.decision(
        actor,
        "run.timed_out",
        run["run_id"],
        f"{key}:timed_out",
        backend_status=status,
        submitted_at=run["submitted_at"],
    )
    workflow.finish(deps, document, {"status": "failed", "backend_status": status}, timed_out)


def _champion(deps: Deps) -> ModelVersion | None:
    production = deps.state.get(PRODUCTION_KEY)
    if production is None:
        return None
    return deps.registry.get(production.body["model"], production.body["version"])


def _note_waiting(request: dict[str, Any], deps: Deps, actor: str, reason: str) -> None:
    if note_waiting(deps, reason):
        deps.audit.record(actor, "training.waiting", request["id"], reason=reason, causes=request["causes"])
