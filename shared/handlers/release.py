"""Releases: a persisted state machine from registered model to production, advanced by events and ticks.

    deploying -> smoke_testing -> [awaiting_approval ->] approved -> [canary ->] promoting -> production
    any failure on the way -> rolling_back -> rolled_back        (awaiting_approval -> rejected | expired)

A new deployment takes no live traffic until it has answered the smoke test exactly as the model did
offline, within the latency SLO. With a model already in production, it then serves a canary share for the
bake period while its live error rate and latency are watched. Production keeps the previous deployment for
instant rollback. Each step finishes at once or leaves the release where the next `reconcile` tick picks it
up: no handler waits for a deployment that takes minutes in Azure.
"""

from __future__ import annotations

import io
import logging
import time
from datetime import datetime
from typing import Any

from shared.deps import Deps
from shared.domain.decisions import release as verdicts
from shared.domain.messages import ModelRegistered
from shared.handlers.training import PRODUCTION_KEY
from shared.ports import ModelVersion, OutgoingEvent
from shared.state import lease as workflow
from shared.state.datasets import load_manifest
from shared.state.store import Document

log = logging.getLogger(__name__)
ACTOR = "on_model_registered"
ACTIVE = (
    "deploying",
    "smoke_testing",
    "awaiting_approval",
    "approved",
    "canary",
    "promoting",
    "rolling_back",
)
MODEL_PROMOTED = "MLOps.ModelPromoted"
RELEASE_ROLLED_BACK = "MLOps.ReleaseRolledBack"
APPROVAL_REQUESTED = "MLOps.ApprovalRequested"

Outcome = tuple[str, dict[str, Any]] | None


def release_id(model_name: str, version: str) -> str:
    return f"{model_name}-v{version}"


def deployment_name(version: str) -> str:
    return f"model-v{version}"


def on_model_registered(message: ModelRegistered, deps: Deps) -> None:
    if message.model_name != deps.settings.model_name:
        deps.audit.record(
            ACTOR,
            "event.ignored",
            f"{message.model_name}:{message.model_version}",
            key=f"ignored:{message.envelope.id}",
            event_id=message.envelope.id,
            reason="not the model this app manages",
        )
        return
    model = deps.registry.get(message.model_name, message.model_version)
    if model is None:  # the event can outrun the registry's read replica: fail, so Event Grid retries
        raise LookupError(f"model {message.model_name}:{message.model_version} is not in the registry")
    start_release(model, message.envelope.id, deps, ACTOR)
    advance(release_id(model.name, model.version), deps, ACTOR)


def start_release(model: ModelVersion, event_id: str, deps: Deps, actor: str) -> None:
    """Create the release (once per model version) and begin its deployment; a redelivery resumes it."""
    rid = release_id(model.name, model.version)
    deployment = deployment_name(model.version)
    key = f"releases/{rid}"
    started = workflow.decision(
        actor,
        "deployment.started",
        rid,
        f"{key}:deployment.started",
        event_id=event_id,
        deployment=deployment,
    )
    document = workflow.create(
        deps,
        key,
        {
            "id": rid,
            "model": model.name,
            "version": model.version,
            "deployment": deployment,
            "status": "deploying",
            "event_id": event_id,
            "history": [{"status": "deploying", "at": deps.clock().isoformat()}],
        },
        started,
    ) or workflow.acquire(deps, key)
    if document is None:
        return  # another worker holds it
    with workflow.held(deps, document):
        if document.body["status"] == "deploying":
            deps.endpoints.begin_deployment(deployment, model)  # idempotent by name
        workflow.release(deps, document)


def advance(rid: str, deps: Deps, actor: str) -> str:
    """Move the release as far as it can go now; returns its status."""
    key = f"releases/{rid}"
    document = workflow.acquire(deps, key)
    if document is None:
        current = deps.state.get(key)
        if current is None:
            raise LookupError(f"release {rid} does not exist")
        return str(current.body["status"])  # another worker is moving it
    with workflow.held(deps, document):
        while (step := _STEPS.get(document.body["status"])) is not None:
            outcome = step(document, deps)
            if outcome is None:
                break  # waiting for something outside: a deployment, an approver, the bake period
            document = _transition(document, outcome[0], deps, actor, outcome[1])
        workflow.release(deps, document)
        return str(document.body["status"])


def decide_approval(rid: str, approved: bool, approver: str, comment: str, deps: Deps) -> tuple[int, str]:
    """An approver's decision; returns an HTTP status and a message (200, 404 or 409)."""
    key = f"releases/{rid}"
    if deps.state.get(key) is None:
        return 404, f"release {rid} does not exist"
    document = workflow.acquire(deps, key)
    if document is None:
        return 409, f"release {rid} is being changed; try again"
    with workflow.held(deps, document):
        status = document.body["status"]
        if status != "awaiting_approval":
            workflow.release(deps, document)
            return 409, f"release {rid} is {status}, not awaiting approval"
        actor = "approve" if approved else "reject"
        detail = {"approver": approver, "comment": comment}
        if not approved:
            _remove(document.body["deployment"], deps)
        document = _transition(document, "approved" if approved else "rejected", deps, actor, detail)
        workflow.release(deps, document)
    advance(rid, deps, actor)
    return 200, f"release {rid} {'approved' if approved else 'rejected'} by {approver}"


def roll_back(rid: str, requested_by: str, reason: str, deps: Deps) -> tuple[int, str]:
    """Manual rollback: a release on its way is stopped; the production release gives way to the previous one."""
    key = f"releases/{rid}"
    if deps.state.get(key) is None:
        return 404, f"release {rid} does not exist"
    document = workflow.acquire(deps, key)
    if document is None:
        return 409, f"release {rid} is being changed; try again"
    with workflow.held(deps, document):
        status = document.body["status"]
        detail = {"requested_by": requested_by, "reason": reason or "manual rollback"}
        if status == "production":
            production = deps.state.get(PRODUCTION_KEY)
            previous = production.body.get("previous") if production else None
            if not previous:
                workflow.release(deps, document)
                return 409, f"release {rid} has no previous production model to roll back to"
            _serve_only(previous["deployment"], deps)
            deps.state.put(PRODUCTION_KEY, {**previous, "since": deps.clock().isoformat()})
            deps.state.update(
                f"releases/{previous['release']}",
                lambda old: None if old is None else {**old, "status": "production"},
            )
            _remove(document.body["deployment"], deps)
            _publish(
                deps,
                RELEASE_ROLLED_BACK,
                document.body,
                f"{rid}:rolled_back",
                restored=f"{previous['model']}:{previous['version']}",
                **detail,
            )
            document = _transition(document, "rolled_back", deps, "rollback", detail)
        elif status in ACTIVE and status != "rolling_back":
            document = _transition(document, "rolling_back", deps, "rollback", detail)
        else:
            workflow.release(deps, document)
            return 409, f"release {rid} is {status}; there is nothing to roll back"
        workflow.release(deps, document)
    advance(rid, deps, "rollback")
    return 200, f"release {rid} rolled back by {requested_by}"


def active_releases(deps: Deps) -> list[str]:
    return [doc.body["id"] for doc in deps.state.list("releases/") if doc.body.get("status") in ACTIVE]


# --- steps ----------------------------------------------------------------------------------------------------


def _deploying(document: Document, deps: Deps) -> Outcome:
    deployment = deps.endpoints.deployment(document.body["deployment"])
    if deployment is None:
        # Its creation failed before it began (the handler then raised for a retry): begin it again.
        model = deps.registry.get(document.body["model"], document.body["version"])
        if model is None:
            return "rolling_back", {"reason": "the model is no longer in the registry"}
        deps.endpoints.begin_deployment(document.body["deployment"], model)
        return None
    if deployment.state == "Succeeded":
        return "smoke_testing", {}
    if deployment.state == "Failed":
        return "rolling_back", {"reason": f"deployment failed: {deployment.detail[:500]}"}
    return None


def _smoke_testing(document: Document, deps: Deps) -> Outcome:
    settings = deps.settings
    columns, rows, expected = _smoke_sample(document.body, deps)
    answers: list[Any] = []
    errors: list[str] = []
    latencies: list[float] = []
    for row in rows:  # one request per row: errors and latency are per request, as clients see them
        payload = {"input_data": {"columns": columns, "index": [0], "data": [row]}}
        started = time.perf_counter()
        try:
            answer = deps.endpoints.invoke(payload, deployment=document.body["deployment"])
        except Exception as error:  # any failure of the scoring service fails the test, with its message
            errors.append(f"{type(error).__name__}: {error}"[:300])
            continue
        finally:
            latencies.append((time.perf_counter() - started) * 1000)
        answers.append(answer[0] if isinstance(answer, list) and len(answer) == 1 else answer)
    verdict = verdicts.smoke(
        answers,
        errors,
        expected,
        latencies,
        settings.release.smoke_tolerance,
        settings.release.latency_slo_ms,
    )
    if not verdict.passed:
        return "rolling_back", {
            "reason": f"smoke test: {'; '.join(verdict.reasons)}",
            "smoke_test": verdict.evidence,
        }
    if settings.release.require_approval:
        _publish(
            deps,
            APPROVAL_REQUESTED,
            document.body,
            f"{document.body['id']}:approval",
            approve=f"/api/releases/{document.body['id']}/approve",
        )
        return "awaiting_approval", {"smoke_test": verdict.evidence}
    return "approved", {"smoke_test": verdict.evidence}


def _awaiting_approval(document: Document, deps: Deps) -> Outcome:
    waited = (deps.clock() - _entered(document)).total_seconds()
    if waited > deps.settings.release.approval_timeout_seconds:
        _remove(document.body["deployment"], deps)
        return "expired", {
            "reason": f"not approved within {deps.settings.release.approval_timeout_seconds:.0f} s"
        }
    return None


def _approved(document: Document, deps: Deps) -> Outcome:
    production = deps.state.get(PRODUCTION_KEY)
    if production is None or deps.settings.release.canary_seconds <= 0:
        return "promoting", {}
    share = deps.settings.release.canary_percent
    deps.endpoints.set_traffic(
        {production.body["deployment"]: 100 - share, document.body["deployment"]: share}
    )
    return "canary", {"percent": share, "bake_seconds": deps.settings.release.canary_seconds}


def _canary(document: Document, deps: Deps) -> Outcome:
    settings = deps.settings
    baked = (deps.clock() - _entered(document)).total_seconds()
    deployment = deps.endpoints.deployment(document.body["deployment"])
    stats = deps.endpoints.stats(document.body["deployment"], since_seconds=max(baked, 1.0))
    verdict = verdicts.canary(
        stats,
        deployment is not None and deployment.state == "Succeeded",
        settings.release.canary_max_error_rate,
        settings.release.latency_slo_ms,
    )
    if not verdict.passed:
        return "rolling_back", {
            "reason": f"canary: {'; '.join(verdict.reasons)}",
            "evidence": verdict.evidence,
        }
    if baked >= settings.release.canary_seconds:
        return "promoting", {"canary": stats}
    return None


def _promoting(document: Document, deps: Deps) -> Outcome:
    body = document.body
    current = deps.state.get(PRODUCTION_KEY)
    previous: dict[str, Any] | None = current.body if current else None
    if previous and previous["release"] == body["id"]:  # a retry after this step half-ran
        previous = previous.get("previous")
    _serve_only(body["deployment"], deps)
    deps.state.put(
        PRODUCTION_KEY,
        {
            "model": body["model"],
            "version": body["version"],
            "deployment": body["deployment"],
            "release": body["id"],
            "since": deps.clock().isoformat(),
            "previous": previous,
        },
    )
    _prune(body["deployment"], previous, deps)
    if previous:
        deps.state.update(
            f"releases/{previous['release']}",
            lambda old: None if old is None else {**old, "status": "superseded"},
        )
    _publish(
        deps,
        MODEL_PROMOTED,
        body,
        f"{body['id']}:promoted",
        previous=f"{previous['model']}:{previous['version']}" if previous else None,
    )
    return "production", {"previous": previous["version"] if previous else None}


def _rolling_back(document: Document, deps: Deps) -> Outcome:
    body = document.body
    production = deps.state.get(PRODUCTION_KEY)
    serving = (
        production.body["deployment"] if production and production.body["release"] != body["id"] else None
    )
    if serving:
        _serve_only(serving, deps)
    else:
        _drain(body["deployment"], deps)
    _remove(body["deployment"], deps)
    reason = next((h.get("reason") for h in reversed(body["history"]) if h.get("reason")), "")
    _publish(
        deps,
        RELEASE_ROLLED_BACK,
        body,
        f"{body['id']}:rolled_back",
        reason=reason,
        restored=f"{production.body['model']}:{production.body['version']}" if serving else None,
    )
    return "rolled_back", {"restored": serving}


_STEPS = {
    "deploying": _deploying,
    "smoke_testing": _smoke_testing,
    "awaiting_approval": _awaiting_approval,
    "approved": _approved,
    "canary": _canary,
    "promoting": _promoting,
    "rolling_back": _rolling_back,
}


# --- helpers --------------------------------------------------------------------------------------------------


def _transition(document: Document, status: str, deps: Deps, actor: str, detail: dict[str, Any]) -> Document:
    """Change status and queue its audit entry in one write, then record it (once, by key)."""
    body = document.body
    history = [*body["history"], {"status": status, "at": deps.clock().isoformat(), **detail}]
    action = {"production": "release.promoted", "rolled_back": "release.rolled_back"}.get(
        status, f"release.{status}"
    )
    entry = workflow.decision(
        actor,
        action,
        body["id"],
        f"releases/{body['id']}:{status}:{len(history)}",
        model=f"{body['model']}:{body['version']}",
        deployment=body["deployment"],
        **detail,
    )
    return workflow.flush(
        deps, workflow.commit(deps, document, {"status": status, "history": history}, entry)
    )


def _entered(document: Document) -> datetime:
    return datetime.fromisoformat(document.body["history"][-1]["at"])


def _serve_only(deployment: str, deps: Deps) -> None:
    """All live traffic to `deployment`, none to any other."""
    deps.endpoints.set_traffic(
        {name: (100 if name == deployment else 0) for name in deps.endpoints.traffic()} | {deployment: 100}
    )


def _drain(deployment: str, deps: Deps) -> None:
    traffic = deps.endpoints.traffic()
    if traffic.get(deployment):
        deps.endpoints.set_traffic({name: 0 for name in traffic})


def _remove(deployment: str, deps: Deps) -> None:
    if deps.endpoints.deployment(deployment) is not None:
        _drain(deployment, deps)
        deps.endpoints.delete_deployment(deployment)


def _prune(serving: str, previous: dict[str, Any] | None, deps: Deps) -> None:
    """Keep production, the rollback target and releases still on their way; remove the rest."""
    keep = {serving}
    if previous and deps.settings.release.keep_deployments > 1:
        keep.add(previous["deployment"])
    keep |= {
        doc.body["deployment"] for doc in deps.state.list("releases/") if doc.body.get("status") in ACTIVE
    }
    for deployment in deps.endpoints.deployments():
        if deployment.name not in keep:
            deps.endpoints.delete_deployment(deployment.name)


def _publish(deps: Deps, event_type: str, release: dict[str, Any], event_id: str, **data: Any) -> None:
    """Tell other systems; the id is the release step's, so a retried step repeats the same event."""
    payload = {
        "releaseId": release["id"],
        "modelName": release["model"],
        "modelVersion": release["version"],
        "deployment": release["deployment"],
        **data,
    }
    deps.publisher.publish([OutgoingEvent(event_type, f"releases/{release['id']}", payload, id=event_id)])


def _smoke_sample(release: dict[str, Any], deps: Deps) -> tuple[list[str], list[list[Any]], list[Any] | None]:
    """Holdout rows and the model's offline predictions, from its training run; else rows of its data."""
    model = deps.registry.get(release["model"], release["version"])
    run_id = model.tags.get("mlops.run_id") if model else None
    if run_id:
        try:
            smoke = deps.jobs.results(run_id).evaluation.get("smoke")
        except LookupError:
            smoke = None
        if smoke and smoke.get("data"):
            rows = smoke["data"][: deps.settings.release.smoke_test_rows]
            return smoke["columns"], rows, smoke["predictions"][: len(rows)]
    return (*_dataset_rows(model, deps), None)


def _dataset_rows(model: ModelVersion | None, deps: Deps) -> tuple[list[str], list[list[Any]]]:
    import pandas as pd

    if model is None:
        raise LookupError("the release's model is not in the registry")
    manifest = load_manifest(
        deps.blobs, deps.settings.containers.datasets, model.tags["mlops.dataset_version"]
    )
    first = manifest["files"][0]
    blob = deps.blobs.read(deps.settings.containers.datasets, first["path"])
    reader = pd.read_parquet if first["path"].endswith(".parquet") else pd.read_csv
    frame = reader(io.BytesIO(blob.data))
    features = frame.drop(columns=[deps.settings.training.target]).head(deps.settings.release.smoke_test_rows)
    return list(features.columns), features.astype(object).where(features.notna(), None).to_numpy().tolist()
