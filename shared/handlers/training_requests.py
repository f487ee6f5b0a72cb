"""Asking for training: a landed file, a drift, a schedule, a person or new code each open one cause;
`reconcile` starts the run."""

from __future__ import annotations

from typing import Any

from shared.deps import Deps
from shared.domain.messages import RequestTraining
from shared.state import keys, requests
from shared.state.records import TrainingCause


def request_training(command: RequestTraining, deps: Deps, actor: str) -> bool:
    """Ask for training once per event: a redelivered event asks for nothing. Returns whether this call
    asked."""
    if not requests.add_cause(deps.state, _cause(command, deps)):
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


def open_cause(command: RequestTraining, deps: Deps) -> None:
    """Ask for training once per event, as part of a decision recorded on its own (a landed file's
    `file.accepted`): the cause is opened, with no `training.requested` entry of its own."""
    requests.open_cause(deps.state, _cause(command, deps))


def _cause(command: RequestTraining, deps: Deps) -> TrainingCause:
    return TrainingCause(command.cause, command.event_id, deps.clock().isoformat(), dict(command.detail))


def retrain(command: RequestTraining, deps: Deps, actor: str) -> dict[str, Any]:
    """A request to retrain (cause `manual`, or `code` with the code version), asked once per id: a retry of
    the same request, even after a run took it in, asks nothing more. Returns where it stands: the open
    training request that holds it, or the run that answers it."""
    run = _run_answering(command.event_id, deps)
    if run is None:
        request_training(command, deps, actor)
    request = requests.open_request(deps.state)
    holding = request.id if request is not None and command.event_id in request.events else None
    if holding is None and run is None:
        run = _run_answering(command.event_id, deps)  # a run started between our write and our read
    return {"id": command.event_id, "cause": command.cause, "request": holding, "run": run}


def _run_answering(event_id: str, deps: Deps) -> str | None:
    for stored in deps.state.list(keys.RUNS):
        if event_id in stored.record.request.events:
            return stored.record.run_id
    return None
