"""Releases: a persisted state machine from registered model to production, advanced by events and ticks.

deploying -> smoke_testing -> (awaiting_approval ->) promoting -> production
any failure -> failed (the new deployment is removed; production keeps serving the previous model)

Each step either finishes at once or leaves the release where the next `reconcile` tick picks it up, so no
handler waits for a deployment that takes minutes in Azure.
"""

from __future__ import annotations

import io
import logging
import math
from typing import Any

from shared import workflow
from shared.bootstrap import Deps
from shared.datasets import load_manifest
from shared.handlers.training import PRODUCTION_KEY
from shared.messages import ModelRegistered
from shared.ports import ModelVersion
from shared.state import Document

log = logging.getLogger(__name__)
ACTOR = "on_model_registered"
ACTIVE = ("deploying", "smoke_testing", "awaiting_approval", "promoting")


def release_id(model_name: str, version: str) -> str:
    return f"{model_name}-v{version}"


def on_model_registered(message: ModelRegistered, deps: Deps) -> None:
    if message.model_name != deps.settings.model_name:
        deps.audit.record(
            ACTOR,
            "event.ignored",
            f"{message.model_name}:{message.model_version}",
            event_id=message.envelope.id,
            reason="not the model this app manages",
        )
        return
    model = deps.registry.get(message.model_name, message.model_version)
    if model is None:  # the event can outrun the registry's read replica: fail, so Event Grid retries
        raise LookupError(f"model {message.model_name}:{message.model_version} is not in the registry")
    rid = release_id(message.model_name, message.model_version)
    start_release(model, message.envelope.id, deps, ACTOR)
    advance(rid, deps, ACTOR)


def deployment_name(version: str) -> str:
    return f"model-v{version}"


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
                break  # waiting for something outside (a deployment, an approver)
            document = _transition(document, outcome[0], deps, actor, outcome[1])
        workflow.release(deps, document)
        return str(document.body["status"])


def decide_approval(rid: str, approved: bool, approver: str, comment: str, deps: Deps) -> tuple[bool, str]:
    key = f"releases/{rid}"
    if deps.state.get(key) is None:
        return False, f"release {rid} does not exist"
    document = workflow.acquire(deps, key)
    if document is None:
        return False, f"release {rid} is being changed; try again"
    status = document.body["status"]
    if status != "awaiting_approval":
        workflow.release(deps, document)
        return False, f"release {rid} is {status}, not awaiting approval"
    new_status = "promoting" if approved else "failed"
    detail = {"approver": approver, "comment": comment}
    document = _transition(document, new_status, deps, "approve" if approved else "reject", detail)
    if not approved:
        deps.endpoints.delete_deployment(document.body["deployment"])
    workflow.release(deps, document)
    advance(rid, deps, "approve")
    return True, f"release {rid} {'approved' if approved else 'rejected'} by {approver}"


def active_releases(deps: Deps) -> list[str]:
    return [doc.body["id"] for doc in deps.state.list("releases/") if doc.body.get("status") in ACTIVE]


def _deploying(document: Document, deps: Deps) -> tuple[str, dict[str, Any]] | None:
    deployment = deps.endpoints.deployment(document.body["deployment"])
    if deployment is None:
        return "failed", {"reason": "deployment disappeared"}
    if deployment.state == "Succeeded":
        return "smoke_testing", {}
    if deployment.state == "Failed":
        deps.endpoints.delete_deployment(document.body["deployment"])
        return "failed", {"reason": f"deployment failed: {deployment.detail}"}
    return None


def _smoke_testing(document: Document, deps: Deps) -> tuple[str, dict[str, Any]] | None:
    body = document.body
    payload, rows = _smoke_payload(body, deps)
    try:
        predictions = deps.endpoints.invoke(payload, deployment=body["deployment"])
    except Exception as error:  # any failure of the scoring service fails the smoke test, with its message
        deps.endpoints.delete_deployment(body["deployment"])
        return "failed", {"reason": f"smoke test: scoring failed: {error}"}
    problems = _check_predictions(predictions, rows)
    if problems:
        deps.endpoints.delete_deployment(body["deployment"])
        return "failed", {"reason": f"smoke test: {problems}"}
    next_status = "awaiting_approval" if deps.settings.require_approval else "promoting"
    return next_status, {"smoke_test": {"rows": rows, "passed": True}}


def _promoting(document: Document, deps: Deps) -> tuple[str, dict[str, Any]] | None:
    body = document.body
    current = deps.state.get(PRODUCTION_KEY)
    previous: dict[str, Any] | None = current.body if current else None
    if previous and previous["release"] == body["id"]:  # a retry after this step half-ran
        previous = previous.get("previous")
    deps.endpoints.set_traffic({body["deployment"]: 100})
    production = {
        "model": body["model"],
        "version": body["version"],
        "deployment": body["deployment"],
        "release": body["id"],
        "since": deps.clock().isoformat(),
        "previous": previous,
    }
    deps.state.put(PRODUCTION_KEY, production)
    # keep the previous one for instant rollback, and those of releases still on their way
    keep = {body["deployment"], previous["deployment"] if previous else ""}
    keep |= {
        doc.body["deployment"] for doc in deps.state.list("releases/") if doc.body.get("status") in ACTIVE
    }
    for deployment in deps.endpoints.deployments():
        if deployment.name not in keep:
            deps.endpoints.delete_deployment(deployment.name)
    if previous:
        deps.state.update(
            f"releases/{previous['release']}",
            lambda old: None if old is None else {**old, "status": "superseded"},
        )
    return "production", {"previous": previous["version"] if previous else None}


_STEPS = {"deploying": _deploying, "smoke_testing": _smoke_testing, "promoting": _promoting}


def _transition(document: Document, status: str, deps: Deps, actor: str, detail: dict[str, Any]) -> Document:
    """Change status and queue its audit entry in one write, then record it (once, by key)."""
    body = document.body
    history = [*body["history"], {"status": status, "at": deps.clock().isoformat(), **detail}]
    action = {"production": "release.promoted", "failed": "release.failed"}.get(status, f"release.{status}")
    entry = workflow.decision(
        actor,
        action,
        body["id"],
        f"releases/{body['id']}:{status}",
        model=f"{body['model']}:{body['version']}",
        deployment=body["deployment"],
        **detail,
    )
    return workflow.flush(
        deps, workflow.commit(deps, document, {"status": status, "history": history}, entry)
    )


def _smoke_payload(release: dict[str, Any], deps: Deps) -> tuple[dict[str, Any], int]:
    """Rows from the model's own dataset, without the target: requests shaped exactly like production's."""
    import pandas as pd

    model = deps.registry.get(release["model"], release["version"])
    manifest = load_manifest(
        deps.blobs, deps.settings.containers.datasets, model.tags["mlops.dataset_version"]
    )
    first = manifest["files"][0]
    blob = deps.blobs.read(deps.settings.containers.datasets, first["path"])
    frame = (
        pd.read_csv(io.BytesIO(blob.data))
        if first["path"].endswith(".csv")
        else pd.read_parquet(io.BytesIO(blob.data))
    )
    features = frame.drop(columns=[deps.settings.training.target]).head(deps.settings.smoke_test_rows)
    payload = {
        "input_data": {
            "columns": list(features.columns),
            "index": list(range(len(features))),
            "data": features.to_numpy().tolist(),
        }
    }
    return payload, len(features)


def _check_predictions(predictions: Any, rows: int) -> str:
    if not isinstance(predictions, list) or len(predictions) != rows:
        return f"expected {rows} predictions, got {str(predictions)[:200]}"
    flat = [p for p in predictions if not isinstance(p, list)]
    if any(isinstance(p, float) and not math.isfinite(p) for p in flat):
        return "predictions contain NaN or infinity"
    return ""
