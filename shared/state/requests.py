"""Training requests and the catalog of accepted files, stored so that a burst of writers never contends.

- Every cause of training (a landed file, a drift, a schedule) is one document `training/requests/<event>`,
  created once per event. The open request is the set of them; a run consumes the ones it answers.
- Every accepted file is one document `catalog/<sha256>`; a dataset version is built from all of them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared.deps import Deps
from shared.domain.messages import RequestTraining
from shared.ports import PreconditionFailed

REQUESTS = "training/requests/"
WAITING_KEY = "training/waiting"
CATALOG = "catalog/"


def request_training(command: RequestTraining, deps: Deps, actor: str) -> bool:
    """Ask for training; the `reconcile` tick starts the run. Once per event: a redelivered event, or a file
    that a run has taken in already, asks for nothing. Returns whether this call asked."""
    sha = command.detail.get("sha256")
    if sha and (entry := catalog_entry(deps, sha)) and entry.get("dataset_version"):
        return False  # a retry after a run consumed the request: the run covers this file
    now = deps.clock()
    item = {"cause": command.cause, "event": command.event_id, "at": now.isoformat(), **command.detail}
    deps.state.create(_item_key(command.event_id), item)
    stored = deps.state.get(_item_key(command.event_id))
    if stored is None:
        return False  # consumed by a run between our write and this read: the run covers this event
    deps.audit.record(
        actor,
        "training.requested",
        command.event_id,
        key=f"training.requested:{command.event_id}",
        cause=command.cause,
        event_id=command.event_id,
        **command.detail,
    )
    return True


def open_request(deps: Deps) -> dict[str, Any] | None:
    """The causes waiting for a run, as one request: its id derives from its first event."""
    items = sorted((d.body for d in deps.state.list(REQUESTS)), key=lambda item: (item["at"], item["event"]))
    if not items:
        return None
    waiting = deps.state.get(WAITING_KEY)
    return {
        "id": f"req-{hashlib.sha256(items[0]['event'].encode()).hexdigest()[:12]}",
        "opened_at": items[0]["at"],
        "updated_at": max(item["at"] for item in items),
        "causes": sorted({item["cause"] for item in items}),
        "events": [item["event"] for item in items],
        "details": items,
        "waiting": waiting.body["reason"] if waiting else None,
    }


def consume(deps: Deps, events: list[str]) -> None:
    """Close the causes a run answers; causes that arrived meanwhile stay open for a follow-up run."""
    for event in events:
        deps.state.delete(_item_key(event))
    deps.state.delete(WAITING_KEY)


def note_waiting(deps: Deps, reason: str) -> bool:
    """Remember why the open request cannot run yet; True the first time this reason is noted."""
    current = deps.state.get(WAITING_KEY)
    if current is not None and current.body["reason"] == reason:
        return False
    try:
        if current is None:
            return deps.state.create(WAITING_KEY, {"reason": reason}) is not None
        deps.state.replace(current, {"reason": reason})
    except PreconditionFailed:
        return False
    return True


def add_to_catalog(deps: Deps, entry: dict[str, Any]) -> None:
    """Record an accepted file in the catalog every dataset version is built from (once per content)."""
    deps.state.create(f"{CATALOG}{entry['sha256']}", entry)


def catalog(deps: Deps) -> dict[str, dict[str, Any]]:
    return {d.body["sha256"]: d.body for d in deps.state.list(CATALOG)}


def catalog_entry(deps: Deps, sha256: str) -> dict[str, Any] | None:
    document = deps.state.get(f"{CATALOG}{sha256}")
    return document.body if document else None


def mark_joined(deps: Deps, shas: list[str], dataset_version: str) -> None:
    """Note the first dataset version each file joined: "which files did this model see" stays answerable."""
    for sha in shas:
        deps.state.update(
            f"{CATALOG}{sha}",
            lambda body: (
                None
                if body is None or body.get("dataset_version")
                else {**body, "dataset_version": dataset_version}
            ),
        )


def _item_key(event_id: str) -> str:
    return f"{REQUESTS}{hashlib.sha256(event_id.encode()).hexdigest()[:32]}"
