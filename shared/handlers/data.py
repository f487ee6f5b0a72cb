"""New data landed: validate it, quarantine what fails, keep what passes, ask for training.

One record per blob version (`files/<hash of name and ETag>`) is the claim: of two deliveries of the same
version, one does the work. Every step after the claim can run again without a second effect, so a crash at
any point is finished by a redelivery or by `reconcile` (`resume_file`).
"""

from __future__ import annotations

import dataclasses
import json
import logging

from shared.deps import Deps
from shared.domain.messages import BlobCreated, RequestTraining
from shared.domain.validation import Limits, validate
from shared.handlers.training_requests import request_training
from shared.ports import PreconditionFailed
from shared.state import catalog, keys
from shared.state.datasets import store_file
from shared.state.lease import Creation, Held, decision, lease
from shared.state.records import CatalogEntry, FileStatus, FrozenSchema, LandedFile

log = logging.getLogger(__name__)
ACTOR = "on_data_landed"


def on_blob_created(message: BlobCreated, deps: Deps, actor: str = ACTOR) -> None:
    settings = deps.settings
    event_id = message.envelope.id
    if message.container != settings.containers.landing:
        deps.audit.record(
            actor,
            "event.ignored",
            message.envelope.subject,
            event_id=event_id,
            reason=f"container {message.container!r} is not the landing container",
        )
        return
    blob = deps.blobs.read(settings.containers.landing, message.blob_name)
    if blob is None:
        # Moved to quarantine by an earlier delivery, or deleted by its owner: nothing to lose.
        log.info("landed blob is gone", extra={"event_id": event_id, "blob": message.blob_name})
        return
    key = keys.landed_file(message.blob_name, blob.info.etag)

    def claim() -> Creation[LandedFile] | None:
        return _claim(message.blob_name, blob.info.etag, blob.data, event_id, deps, actor)

    with lease(deps, key, create=claim) as held:
        if held is not None:  # None: handled already, or in the hands of another worker
            resume_file(held, deps, blob.data, actor)


def resume_file(held: Held[LandedFile], deps: Deps, data: bytes | None, actor: str = ACTOR) -> None:
    """Finish the steps a file's record still needs; every step may already have happened."""
    record = held.record
    if record.status.final:
        return
    containers = deps.settings.containers
    if data is None:
        blob = deps.blobs.read(containers.landing, record.blob)
        data = blob.data if blob is not None and blob.info.etag == record.etag else None
    if record.status is FileStatus.QUARANTINING:
        _quarantine(record, data, deps)
        held.change(dataclasses.replace(record, status=FileStatus.QUARANTINED))
        return
    if data is None:
        stored = deps.blobs.read(containers.datasets, record.path or "")
        data = stored.data if stored is not None else None
    if data is None:
        raise LookupError(f"{record.blob} changed or vanished before it was stored")
    path = store_file(deps.blobs, containers.datasets, record.sha256, record.blob, data)
    catalog.add(deps.state, CatalogEntry(record.sha256, record.blob, record.rows, path, record.event_id))
    held.change(dataclasses.replace(record, path=path))
    held.flush()
    request_training(
        RequestTraining("data", record.event_id, {"file": record.blob, "sha256": record.sha256}), deps, actor
    )
    held.change(dataclasses.replace(held.record, status=FileStatus.ACCEPTED))


def _claim(name: str, etag: str, data: bytes, event_id: str, deps: Deps, actor: str) -> Creation[LandedFile]:
    """Validate the file: the record to create, and the decision it carries."""
    settings = deps.settings
    frozen = deps.state.get(keys.SCHEMA)
    declared = settings.data.schema
    spec = declared or (frozen.record.spec or frozen.record.columns if frozen else None)
    limits = Limits(settings.data.max_file_bytes, settings.data.min_rows, settings.training.target)
    result = validate(name, data, spec, limits)
    key = keys.landed_file(name, etag)
    record = LandedFile(
        name, etag, event_id, result.sha256, result.rows, deps.clock().isoformat(), FileStatus.ACCEPTING
    )
    if not result.ok:
        problems = tuple(p.as_dict() for p in result.problems)
        quarantined = decision(
            actor,
            "file.quarantined",
            name,
            f"{key}:quarantined",
            event_id=event_id,
            sha256=result.sha256,
            reasons=list(result.reasons),
            problems=list(problems),
        )
        record = dataclasses.replace(
            record, status=FileStatus.QUARANTINING, reasons=tuple(result.reasons), problems=problems
        )
        return record, (quarantined,)
    if frozen is None:
        learned = FrozenSchema(
            columns=result.schema,
            spec=(declared or result.observed).as_dict(),
            source="declared" if declared else "learned",
            learned_from=name,
            at=deps.clock().isoformat(),
        )
        frozen = deps.state.create(keys.SCHEMA, learned) or deps.state.get(keys.SCHEMA)
        if frozen is not None and frozen.record.learned_from != name and not declared:
            return _claim(name, etag, data, event_id, deps, actor)  # another file's schema froze first
    if frozen is not None and frozen.record.learned_from == name:
        deps.audit.record(
            actor,
            "schema.learned",
            name,
            key=f"{keys.SCHEMA}:learned",
            event_id=event_id,
            source=frozen.record.source,
            columns=frozen.record.columns,
        )
    accepted = decision(
        actor,
        "file.accepted",
        name,
        f"{key}:accepted",
        event_id=event_id,
        sha256=result.sha256,
        rows=result.rows,
    )
    return record, (accepted,)


def _quarantine(record: LandedFile, data: bytes | None, deps: Deps) -> None:
    reason = {
        "blob": record.blob,
        "etag": record.etag,
        "event_id": record.event_id,
        "reasons": list(record.reasons),
        "quarantined_at": record.at,
    }
    quarantine_blob(deps, deps.settings.containers.landing, record.blob, record.etag, data, reason)


def quarantine_blob(
    deps: Deps, container: str, name: str, etag: str, data: bytes | None, reason: dict, target: str = ""
) -> None:
    """Move a rejected blob to the quarantine container (as `target`, default its own name) beside a
    `.reason.json`. Copy first, then delete: a crash in between leaves a copy too many, never a loss."""
    quarantine = deps.settings.containers.quarantine
    target = target or name
    if data is not None:
        deps.blobs.write(quarantine, target, data)
    elif deps.blobs.info(quarantine, target) is None:
        raise LookupError(f"{name} is neither in {container} nor in quarantine")
    deps.blobs.write(
        quarantine,
        f"{target}.reason.json",
        json.dumps(reason, indent=1).encode(),
        content_type="application/json",
    )
    try:
        deps.blobs.delete(container, name, if_match=etag)
    except PreconditionFailed:
        log.info("blob changed since; the new version is handled on its own", extra={"blob": name})
