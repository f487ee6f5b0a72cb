"""New data landed: validate it, quarantine what fails, keep what passes, ask for training.

One record per blob version (`files/<hash of name and ETag>`) is the claim: of two deliveries of the same
version, one does the work. No file is ever held in memory whole: its size is checked (from the event, then its
properties) before a byte is read, it is hashed and validated a chunk at a time, and it is copied to the dataset
store or to quarantine by the Blob service itself. Every step after the claim can run again without a second effect, so a crash at
any point is finished by a redelivery or by `reconcile` (`resume_file`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from shared import telemetry
from shared.deps import Deps
from shared.domain.chunked_validation import validate_chunks
from shared.domain.messages import BlobCreated, RequestTraining
from shared.domain.validation import Limits, Validation
from shared.handlers.training_requests import open_cause
from shared.ports import BlobInfo, BlobStream, PreconditionFailed
from shared.state import catalog, keys
from shared.state.datasets import store_copy
from shared.state.lease import Creation, Held, decision, lease
from shared.state.records import CatalogEntry, FileStatus, FrozenSchema, LandedFile, QuarantineNote

log = logging.getLogger(__name__)
ACTOR = "on_data_landed"
FRESH_BYTES = 4 * 1024 * 1024  # one chunk: a file this small is validated before its record is looked up


def on_blob_created(message: BlobCreated, deps: Deps, actor: str = ACTOR) -> None:
    with telemetry.span("data.landed", event_id=message.envelope.id, blob=message.blob_name):
        _on_blob_created(message, deps, actor)


def _on_blob_created(message: BlobCreated, deps: Deps, actor: str) -> None:
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
    limits = _limits(deps)
    if message.content_length > limits.max_bytes:
        # Oversized by its event: the properties only, never a byte of the file.
        found = deps.blobs.info(settings.containers.landing, message.blob_name)
        source: BlobInfo | BlobStream | None = found
    else:
        # The version there now: its properties and first chunk come in one request.
        source = deps.blobs.open(settings.containers.landing, message.blob_name)
    if source is None:
        # Moved to quarantine by an earlier delivery, or deleted by its owner: nothing to lose.
        log.info("landed blob is gone", extra={"event_id": event_id, "blob": message.blob_name})
        return
    info = _info(source)
    key = keys.landed_file(info.name, info.etag)

    def claim() -> Creation[LandedFile] | None:
        return _claim(message, source, limits, deps, actor)

    # A small file is most likely new (a duplicate costs one more read of it); a large one is looked up first.
    fresh = info.size <= FRESH_BYTES
    with lease(deps, key, create=claim, fresh=fresh, settled=lambda file: file.status.final) as held:
        if held is not None:  # None: handled already, or in the hands of another worker
            resume_file(held, deps, actor)


def resume_file(held: Held[LandedFile], deps: Deps, actor: str = ACTOR) -> None:
    """Finish the steps a file's record still needs; every step may already have happened. No step reads the
    file: it is copied where it goes by the Blob service."""
    record = held.record
    if record.status.final:
        return
    containers = deps.settings.containers
    if record.status is FileStatus.QUARANTINING:
        _quarantine(record, deps)
        # for the burst's one notification (`notify.summarise_quarantined`): a write per quarantined file only
        note = QuarantineNote(record.blob, deps.clock().isoformat(), record.reasons[:3])
        deps.state.put(keys.quarantine_note(held.key), note)
        held.finish(dataclasses.replace(record, status=FileStatus.QUARANTINED))
        return
    path = store_copy(
        deps.blobs, containers.landing, record.blob, record.etag, containers.datasets, record.sha256
    )
    entry = CatalogEntry(record.sha256, record.blob, record.rows, path, record.event_id, etag=record.etag)
    if not catalog.add(deps.state, entry).dataset_version:  # else a run took this content in already
        detail = {"file": record.blob, "sha256": record.sha256}
        open_cause(RequestTraining("data", record.event_id, detail), deps)
    held.finish(dataclasses.replace(record, path=path, status=FileStatus.ACCEPTED))


def _info(source: BlobInfo | BlobStream) -> BlobInfo:
    return source.info if isinstance(source, BlobStream) else source


def _limits(deps: Deps) -> Limits:
    settings = deps.settings
    return Limits(settings.data.max_file_bytes, settings.data.min_rows, settings.training.target)


def _validate(
    message: BlobCreated, source: BlobInfo | BlobStream, spec: Any, limits: Limits, deps: Deps
) -> Validation | None:
    """Validate the version `source` names, reading it in chunks (from `source` when it is a stream not read
    yet); None when it changed or vanished meanwhile (its successor is a file of its own). An oversized file, by
    the event or by its properties, is never read."""
    info = _info(source)
    if message.etag in ("", info.etag) and message.content_length > limits.max_bytes:
        return validate_chunks(info.name, (), spec, limits, size=message.content_length)
    if info.size > limits.max_bytes:
        return validate_chunks(info.name, (), spec, limits, size=info.size)
    stream = source if isinstance(source, BlobStream) else deps.blobs.open(info.container, info.name)
    if stream is None or stream.info.etag != info.etag:
        return None
    try:
        return validate_chunks(info.name, stream.chunks, spec, limits, size=info.size)
    except PreconditionFailed:
        return None


def _claim(
    message: BlobCreated, source: BlobInfo | BlobStream, limits: Limits, deps: Deps, actor: str
) -> Creation[LandedFile] | None:
    """Validate the file: the record to create, and the decision it carries."""
    settings = deps.settings
    info = _info(source)
    name, etag, event_id = info.name, info.etag, message.envelope.id
    frozen = deps.state.fixed(keys.SCHEMA)
    declared = settings.data.schema
    spec = declared or (frozen.record.spec or frozen.record.columns if frozen else None)
    result = _validate(message, source, spec, limits, deps)
    if result is None:
        log.info("landed blob changed while it was read", extra={"event_id": event_id, "blob": name})
        return None
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
            # Another file's schema froze first: validate again against it (the file read anew).
            return _claim(message, info, limits, deps, actor)
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


def _quarantine(record: LandedFile, deps: Deps) -> None:
    reason = {
        "blob": record.blob,
        "etag": record.etag,
        "event_id": record.event_id,
        "reasons": list(record.reasons),
        "quarantined_at": record.at,
    }
    quarantine_blob(deps, deps.settings.containers.landing, record.blob, record.etag, reason)


def quarantine_blob(deps: Deps, container: str, name: str, etag: str, reason: dict, target: str = "") -> None:
    """Move a rejected blob version to the quarantine container (as `target`, default its own name) beside a
    `.reason.json`, by a server-side copy: however large, no byte of it passes through this worker. Copy first,
    then delete: a crash in between leaves a copy too many, never a loss."""
    quarantine = deps.settings.containers.quarantine
    target = target or name
    try:
        deps.blobs.copy(container, name, quarantine, target, source_etag=etag)
    except PreconditionFailed:
        # Gone or changed: an earlier attempt copied it and deleted it, or its owner replaced it.
        if deps.blobs.info(quarantine, target) is None:
            raise LookupError(f"{name} is neither in {container} nor in quarantine") from None
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
