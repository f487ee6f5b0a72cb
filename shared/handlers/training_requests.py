"""Asking for training: a landed file, a drift, a schedule each open one cause; `reconcile` starts the run."""

from __future__ import annotations

from shared.deps import Deps
from shared.domain.messages import RequestTraining
from shared.state import catalog, requests
from shared.state.records import TrainingCause


def request_training(command: RequestTraining, deps: Deps, actor: str) -> bool:
    """Ask for training once per event: a redelivered event, or a file that a run has taken in already, asks
    for nothing. Returns whether this call asked."""
    sha = command.detail.get("sha256")
    if sha and (entry := catalog.entry(deps.state, str(sha))) and entry.dataset_version:
        return False  # a retry after a run consumed the request: the run covers this file
    cause = TrainingCause(command.cause, command.event_id, deps.clock().isoformat(), dict(command.detail))
    if not requests.add_cause(deps.state, cause):
        return False  # consumed by a run between our write and our read: the run covers this event
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
