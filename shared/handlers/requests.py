"""The open training request: one document that data, drift and schedules add causes to, until it runs."""

from __future__ import annotations

import uuid
from typing import Any

from shared.bootstrap import Deps
from shared.messages import RequestTraining

REQUEST_KEY = "training/request"
CATALOG_KEY = "datasets/catalog"


def request_training(command: RequestTraining, deps: Deps, actor: str) -> dict[str, Any]:
    """Add a cause to the open request (opening one if needed); the `reconcile` tick starts the run."""
    now = deps.clock().isoformat()

    def add(body: dict[str, Any] | None) -> dict[str, Any] | None:
        body = body or {"id": f"req-{uuid.uuid4().hex[:12]}", "opened_at": now, "causes": [], "events": []}
        if command.event_id in body["events"]:
            return None  # this event already asked; a redelivery changes nothing
        body["events"].append(command.event_id)
        if command.cause not in body["causes"]:
            body["causes"].append(command.cause)
        body["updated_at"] = now
        body.setdefault("details", []).append(
            {"cause": command.cause, "event": command.event_id, **command.detail}
        )
        return body

    document = deps.state.update(REQUEST_KEY, add)
    assert document is not None
    deps.audit.record(
        actor,
        "training.requested",
        document.body["id"],
        cause=command.cause,
        event_id=command.event_id,
        **command.detail,
    )
    return document.body


def add_to_catalog(deps: Deps, entry: dict[str, Any]) -> None:
    """Record an accepted file in the catalog every dataset version is built from."""

    def add(body: dict[str, Any] | None) -> dict[str, Any] | None:
        body = body or {"files": {}}
        if entry["sha256"] in body["files"]:
            return None
        body["files"][entry["sha256"]] = entry
        return body

    deps.state.update(CATALOG_KEY, add)
