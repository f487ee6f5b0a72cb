"""The open training request, stored so that a burst of writers never contends.

Every cause of training (a landed file, a drift, a schedule, a request to retrain) is one record
`training/requests/<event>`, created once per event. The open request is the set of them; a run consumes the
ones it answers.
"""

from __future__ import annotations

import dataclasses
import hashlib

from shared.ports import PreconditionFailed
from shared.state import keys
from shared.state.records import TrainingCause, TrainingRequest, WaitingNote
from shared.state.store import StateStore


def add_cause(state: StateStore, cause: TrainingCause) -> bool:
    """Open `cause`; False if a run consumed it between this write and the read that confirms it."""
    key = keys.training_cause(cause.event)
    state.create(key, cause)
    return state.exists(key)


def open_cause(state: StateStore, cause: TrainingCause) -> None:
    """Open `cause` (once per event) without confirming it: a run that consumes it at once covers it too."""
    state.create(keys.training_cause(cause.event), cause)


def open_request(state: StateStore) -> TrainingRequest | None:
    """The causes waiting for a run, as one request: its id derives from its first event."""
    causes = sorted((s.record for s in state.list(keys.CAUSES)), key=lambda c: (c.at, c.event))
    if not causes:
        return None
    waiting = state.get(keys.WAITING)
    return TrainingRequest(
        id=f"req-{hashlib.sha256(causes[0].event.encode()).hexdigest()[:12]}",
        opened_at=causes[0].at,
        updated_at=max(c.at for c in causes),
        causes=tuple(sorted({c.cause for c in causes})),
        events=tuple(c.event for c in causes),
        details=tuple(causes),
        waiting=waiting.record.reason if waiting else None,
    )


def consume(state: StateStore, events: tuple[str, ...]) -> None:
    """Close the causes a run answers; causes that arrived meanwhile stay open for a follow-up run."""
    for event in events:
        state.delete(keys.training_cause(event))
    state.delete(keys.WAITING)


def note_waiting(state: StateStore, reason: str) -> bool:
    """Remember why the open request cannot run yet; True the first time this reason is noted."""
    current = state.get(keys.WAITING)
    if current is not None and current.record.reason == reason:
        return False
    try:
        if current is None:
            return state.create(keys.WAITING, WaitingNote(reason)) is not None
        state.replace(dataclasses.replace(current, record=WaitingNote(reason)))
    except PreconditionFailed:
        return False
    return True
