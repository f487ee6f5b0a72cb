"""Training: open requests become runs; completed runs are gated and registered, or rejected with reasons."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from shared.bootstrap import Deps
from shared.datasets import build_manifest, save_manifest
from shared.decisions.coalescing import Timing, ready_to_start
from shared.decisions.gates import decide, parse_absolute_gates
from shared.handlers.data import SCHEMA_KEY
from shared.handlers.requests import CATALOG_KEY, REQUEST_KEY
from shared.messages import RunCompleted
from shared.ports import PreconditionFailed, TrainingJob
from shared.state import Document

log = logging.getLogger(__name__)
PRODUCTION_KEY = "releases/production"
IN_FLIGHT = ("running",)


def start_training_if_due(deps: Deps, actor: str = "reconcile") -> str | None:
    """Turn the open request into a run once it is due and nothing is in flight; return the run id started."""
    request = deps.state.get(REQUEST_KEY)
    if request is None:
        return None
    now = deps.clock()
    timing = Timing(deps.settings.quiet_period_seconds, deps.settings.max_wait_seconds)
    opened, updated = (datetime.fromisoformat(request.body[k]) for k in ("opened_at", "updated_at"))
    if not ready_to_start(opened, updated, now, timing) or runs_in_flight(deps):
        return None
    catalog = deps.state.get(CATALOG_KEY)
    schema = deps.state.get(SCHEMA_KEY)
    if catalog is None or schema is None or not catalog.body["files"]:
        _note_waiting(request.body, deps, actor, "no accepted data yet")
        return None
    files = [{k: f[k] for k in ("name", "sha256", "rows", "path")} for f in catalog.body["files"].values()]
    manifest = build_manifest(files, schema.body["columns"])
    run_id = f"train-{manifest['id'].removeprefix('ds-')}"
    if deps.state.get(f"runs/{run_id}") is not None:
        # Retraining on identical data reproduces the same model; wait for new data instead.
        _note_waiting(request.body, deps, actor, f"dataset {manifest['id']} was already trained on")
        return None
    save_manifest(deps.blobs, deps.settings.containers.datasets, manifest)
    champion = _champion(deps)
    run = {
        "run_id": run_id,
        "status": "running",
        "dataset_version": manifest["id"],
        "request": request.body,
        "champion": champion.id if champion else None,
        "submitted_at": now.isoformat(),
    }
    if deps.state.create(f"runs/{run_id}", run) is None:
        return None  # another worker started this very run
    _consume(request, deps)
    deps.audit.record(
        actor,
        "training.started",
        run_id,
        dataset_version=manifest["id"],
        files=len(files),
        rows=manifest["rows"],
        causes=request.body["causes"],
        events=request.body["events"],
        champion=run["champion"],
    )
    deps.jobs.submit(
        TrainingJob(
            run_id=run_id,
            dataset_version=manifest["id"],
            manifest=manifest,
            config=deps.settings.training.as_job_config(),
            champion=champion,
            tags={"mlops.request": request.body["id"]},
        )
    )
    return run_id


def on_run_completed(message: RunCompleted, deps: Deps, actor: str = "on_run_completed") -> None:
    run_key = f"runs/{message.run_id}"
    run = deps.state.get(run_key)
    if run is None:
        deps.audit.record(
            actor,
            "event.ignored",
            message.run_id,
            event_id=message.envelope.id,
            reason="run was not started by this system",
        )
        return
    if run.body["status"] not in IN_FLIGHT:
        return  # handled already: a redelivery, or RunCompleted after RunStatusChanged
    now = deps.clock().isoformat()
    if message.status != "Completed":
        deps.state.replace(
            run, {**run.body, "status": "failed", "finished_at": now, "backend_status": message.status}
        )
        deps.audit.record(
            actor, "run.failed", message.run_id, event_id=message.envelope.id, status=message.status
        )
        return
    results = deps.jobs.results(message.run_id)
    evaluation = results.evaluation
    decision = decide(
        evaluation, parse_absolute_gates(deps.settings.absolute_gates), deps.settings.min_improvement
    )
    outcome = {
        **run.body,
        "finished_at": now,
        "completion_event": message.envelope.id,
        "gates": decision.as_dict(),
        "evaluation": evaluation,
    }
    if not decision.passed:
        deps.state.replace(run, {**outcome, "status": "rejected"})
        deps.audit.record(
            actor,
            "challenger.rejected",
            message.run_id,
            event_id=message.envelope.id,
            reasons=decision.reasons,
            gates=decision.as_dict()["verdicts"],
            challenger=evaluation["challenger"],
            champion=evaluation.get("champion"),
        )
        return
    tags = lineage_tags(run.body, evaluation, decision.as_dict(), message.envelope.id)
    model = deps.registry.register(deps.settings.model_name, results, tags)
    deps.state.replace(run, {**outcome, "status": "registered", "model_version": model.version})
    deps.audit.record(
        actor,
        "model.registered",
        model.id,
        event_id=message.envelope.id,
        run_id=message.run_id,
        dataset_version=run.body["dataset_version"],
        metrics=evaluation["challenger"],
        champion_metrics=evaluation.get("champion"),
        gates=decision.as_dict()["verdicts"],
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
    }


def runs_in_flight(deps: Deps) -> list[dict[str, Any]]:
    return [doc.body for doc in deps.state.list("runs/") if doc.body["status"] in IN_FLIGHT]


def time_out_stuck_runs(deps: Deps, actor: str = "reconcile") -> None:
    """Handle runs whose completion event never came; give up on runs past the timeout."""
    from shared.messages import Envelope, RunCompleted

    limit = timedelta(seconds=deps.settings.run_timeout_seconds)
    for run in runs_in_flight(deps):
        status = deps.jobs.status(run["run_id"])
        age = deps.clock() - datetime.fromisoformat(run["submitted_at"])
        if status == "NotFound" or age > limit:
            _mark_timed_out(run, status, deps, actor)
        elif status in ("Completed", "Failed", "Canceled") and age > timedelta(seconds=30):
            envelope = Envelope(f"reconcile-{run['run_id']}", "reconcile", "", "", deps.clock(), {})
            try:
                on_run_completed(RunCompleted(envelope, run["run_id"], "", status, {}, {}), deps, actor)
            except Exception:
                # One broken run must not stop the tick; it is retried next tick until the timeout.
                log.exception("could not handle finished run", extra={"run_id": run["run_id"]})


def _mark_timed_out(run: dict[str, Any], status: str, deps: Deps, actor: str) -> None:
    document = deps.state.get(f"runs/{run['run_id']}")
    if document is None or document.body["status"] not in IN_FLIGHT:
        return
    deps.state.replace(document, {**document.body, "status": "failed", "backend_status": status})
    deps.audit.record(
        actor, "run.timed_out", run["run_id"], backend_status=status, submitted_at=run["submitted_at"]
    )


def _consume(request: Document, deps: Deps) -> None:
    """Close the request the run answers; events that arrived meanwhile stay open for a follow-up run."""
    try:
        deps.state.delete(REQUEST_KEY, request)
        return
    except PreconditionFailed:
        consumed = set(request.body["events"])

    def keep_newer(body: dict[str, Any] | None) -> dict[str, Any] | None:
        if body is None:
            return None
        details = [d for d in body.get("details", []) if d["event"] not in consumed]
        return {
            **body,
            "events": [e for e in body["events"] if e not in consumed],
            "details": details,
            "causes": sorted({d["cause"] for d in details}),
            "waiting": None,
        }

    deps.state.update(REQUEST_KEY, keep_newer)


def _champion(deps: Deps):
    production = deps.state.get(PRODUCTION_KEY)
    if production is None:
        return None
    return deps.registry.get(production.body["model"], production.body["version"])


def _note_waiting(request: dict[str, Any], deps: Deps, actor: str, reason: str) -> None:
    if request.get("waiting") == reason:
        return
    deps.state.update(REQUEST_KEY, lambda body: None if body is None else {**body, "waiting": reason})
    deps.audit.record(actor, "training.waiting", request["id"], reason=reason, causes=request["causes"])
