"""How a handler changes a state document so that crashes and concurrent workers change nothing twice.

- A worker first takes the document's lease (an ETag-guarded write of `lease_until`). Another live worker
  holding it means the work is in hand: the duplicate delivery is acknowledged and does nothing. A lease
  whose worker crashed expires, and the next delivery or `reconcile` tick takes over.
- Decisions go into the document's `outbox` in the same conditional write as the state change they explain,
  and are then recorded in the audit log by key, so a crash between the two loses no entry and a retry writes
  none twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from shared.deps import Deps
from shared.ports import PreconditionFailed
from shared.state.store import Document

LEASE_SECONDS = 120


def create(deps: Deps, key: str, body: dict[str, Any], *decisions: dict[str, Any]) -> Document | None:
    """Create the document leased to this worker, with its decisions; None if it exists already."""
    now = deps.clock()
    return deps.state.create(key, {**body, **_lease(now), "outbox": _stamp(decisions, now)})


def acquire(deps: Deps, key: str) -> Document | None:
    """This worker's lease on an existing document; None if absent or leased by another live worker."""
    for _ in range(5):
        document = deps.state.get(key)
        if document is None or _leased_by_other(document, deps.clock()):
            return None
        try:
            return deps.state.replace(document, {**document.body, **_lease(deps.clock())})
        except PreconditionFailed:
            continue
    return None


def commit(deps: Deps, document: Document, changes: dict[str, Any], *decisions: dict[str, Any]) -> Document:
    """Apply `changes` and queue `decisions` in one conditional write (PreconditionFailed if we lost)."""
    outbox = [*document.body.get("outbox", []), *_stamp(decisions, deps.clock())]
    return deps.state.replace(document, {**document.body, **changes, "outbox": outbox})


def flush(deps: Deps, document: Document) -> Document:
    """Record the queued decisions in the audit log (each once, by key) and empty the outbox."""
    outbox = document.body.get("outbox", [])
    if not outbox:
        return document
    for item in outbox:
        detail = dict(item["detail"])
        deps.audit.record(
            item["actor"],
            item["action"],
            item["subject"],
            key=item["key"],
            **detail,
        )
    return deps.state.replace(document, {**document.body, "outbox": []})


def release(deps: Deps, document: Document) -> Document:
    """Flush and give the lease back."""
    document = flush(deps, document)
    return deps.state.replace(document, {**document.body, "lease_until": None, "lease_owner": None})


def finish(deps: Deps, document: Document, changes: dict[str, Any], *decisions: dict[str, Any]) -> Document:
    return release(deps, commit(deps, document, changes, *decisions))


@contextmanager
def held(deps: Deps, document: Document) -> Iterator[Document]:
    """Work on a leased document; if the work fails with an error, give the lease back so the retry that
    the error causes can take over at once. (A process that dies gives nothing back: its lease expires.)"""
    try:
        yield document
    except Exception:
        _abandon(deps, document)
        raise


def _abandon(deps: Deps, document: Document) -> None:
    owner = document.body.get("lease_owner")
    for _ in range(5):
        current = deps.state.get(document.key)
        if current is None or current.body.get("lease_owner") != owner:
            return
        try:
            deps.state.replace(current, {**current.body, "lease_until": None, "lease_owner": None})
            return
        except PreconditionFailed:
            continue


def decision(actor: str, action: str, subject: str, key: str, **detail: Any) -> dict[str, Any]:
    return {"actor": actor, "action": action, "subject": subject, "key": key, "detail": detail}


def needs_attention(document: Document, now: datetime) -> bool:
    """An unflushed outbox or an expired lease: work a crashed worker left for `reconcile`."""
    body = document.body
    return not _leased_by_other(document, now) and bool(body.get("outbox") or body.get("lease_until"))


def _lease(now: datetime) -> dict[str, Any]:
    return {
        "lease_until": (now + timedelta(seconds=LEASE_SECONDS)).isoformat(),
        "lease_owner": uuid.uuid4().hex,
    }


def _leased_by_other(document: Document, now: datetime) -> bool:
    until = document.body.get("lease_until")
    return bool(until) and datetime.fromisoformat(until) > now


def _stamp(decisions: tuple[dict[str, Any], ...], now: datetime) -> list[dict[str, Any]]:
    return [{**d, "at": now.isoformat()} for d in decisions]
