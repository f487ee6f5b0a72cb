"""Files overwritten or deleted in landing leave future dataset versions.

The newest version of a name wins: once no landed version holds a content any more (its name was overwritten
with other bytes, or deleted), the content is retracted from the catalog, with why ("overwritten by etag X",
"deleted at T"), an audit entry, and, if a dataset version had taken it in, a request to train without it.
What landing holds now decides, so events arriving late or out of order cannot retract the version that won:
`Microsoft.Storage.BlobDeleted` looks now, the `reconcile` tick looks again (an event lost is a retraction
late, not missed), and so does every start of training before it builds the dataset version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from shared.deps import Deps
from shared.domain.messages import BlobDeleted, RequestTraining
from shared.handlers.training_requests import request_training
from shared.state import catalog, keys
from shared.state.records import CatalogEntry, SweepCursor

log = logging.getLogger(__name__)
ACTOR = "on_data_deleted"


def on_blob_deleted(message: BlobDeleted, deps: Deps, actor: str = ACTOR) -> None:
    if message.container != deps.settings.containers.landing:
        deps.audit.record(
            actor,
            "event.ignored",
            message.envelope.subject,
            event_id=message.envelope.id,
            reason=f"container {message.container!r} is not the landing container",
        )
        return
    retract_stale(deps, actor, message.envelope.id, message.envelope.time.isoformat())


def retract_stale(deps: Deps, actor: str, event_id: str = "", at: str | None = None) -> list[str]:
    """Retract every content no landed version holds; bring back a retracted one that is held again. Returns
    the contents retracted now."""
    landing = {info.name: info.etag for info in deps.blobs.list(deps.settings.containers.landing)}
    return _judge(list(catalog.entries(deps.state).values()), landing, deps, actor, event_id, at)


def check_retractions(deps: Deps, actor: str) -> list[str]:
    """The tick's look: the next `MLOPS_RETRACTION_CHECKS` catalog entries, continuing where the last tick
    stopped, against landing: its one page when it has no more, else each version's name asked of it (a tick's
    cost does not grow with the catalog)."""
    limit = deps.settings.ticks.retraction_checks
    if limit <= 0:
        return []
    key = keys.sweep("retractions")
    cursor = deps.state.get(key)
    entries, following = deps.state.page(keys.CATALOG, cursor.record.marker if cursor else None, limit)
    container = deps.settings.containers.landing
    listed, more = deps.blobs.list_page(container, limit=deps.settings.ticks.sweep_page)
    if more is None:  # all of landing in one page (one request): nothing to ask name by name
        landing = {info.name: info.etag for info in listed}
    else:
        names = {version.name for stored in entries for version in stored.record.versions()}
        landing = {
            name: info.etag for name in names if (info := deps.blobs.info(container, name)) is not None
        }
    retracted = _judge([stored.record for stored in entries], landing, deps, actor, "", None)
    deps.state.put(key, SweepCursor(following))
    return retracted


def _judge(
    entries: list[CatalogEntry],
    landing: Mapping[str, str],
    deps: Deps,
    actor: str,
    event_id: str,
    at: str | None,
) -> list[str]:
    """Retract the `entries` no version in `landing` (name -> ETag, for their names at least) holds any more;
    restore the retracted ones held again."""
    at = at or deps.clock().isoformat()
    retracted = []
    for entry in entries:
        held = catalog.held(entry, landing)
        if entry.retracted is not None:
            if held:
                _restore(entry.sha256, entry.name, deps, actor)
            continue
        if held:
            continue
        why = catalog.retraction(entry, landing, at, event_id or f"{actor}:{at}")
        # The decision first, by key (once), then the record: a crash between is finished by the next look.
        deps.audit.record(
            actor,
            "file.retracted",
            entry.name,
            key=f"{keys.catalog_entry(entry.sha256)}:retracted:{entry.etag}:{why.by_etag or 'deleted'}",
            event_id=why.event_id,
            sha256=entry.sha256,
            etag=entry.etag,
            reason=why.reason,
            why=why.why,
            by_etag=why.by_etag,
            dataset_version=entry.dataset_version,
        )
        if not catalog.retract(deps.state, entry.sha256, why):
            continue
        retracted.append(entry.sha256)
        log.info("file retracted", extra={"blob": entry.name, "sha256": entry.sha256, "why": why.why})
        if entry.dataset_version:  # a model may have learned from it: train on the data without it
            cause = RequestTraining(
                "data",
                f"retracted:{entry.sha256}:{entry.etag}",
                {"file": entry.name, "retracted": entry.sha256, "why": why.why},
            )
            request_training(cause, deps, actor)
    return retracted


def _restore(sha256: str, name: str, deps: Deps, actor: str) -> None:
    """A retracted content whose version is in landing again (it was landed anew meanwhile)."""
    stored = catalog.restore(deps.state, sha256)
    if stored is not None:
        deps.audit.record(actor, "file.restored", name, sha256=sha256, etag=stored.etag)
