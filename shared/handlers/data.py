"""New data landed: validate it, quarantine what fails, keep what passes, ask for training.

One record per blob version (`files/<hash of name and ETag>`) is the claim: of two deliveries of the same
version, one does the work. Every step after the claim can run again without a second effect, so a crash at
any point is finished by a redelivery or by `reconcile` (`resume_file`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from shared.deps import Deps
from shared.domain.messages import BlobCreated, RequestTraining
from shared.domain.validation import Limits, validate
from shared.ports import PreconditionFailed
from shared.state import lease as workflow
from shared.state.datasets import store_file
from shared.state.requests import add_to_catalog, request_training
from shared.state.store import Document

log = logging.getLogger(__name__)
ACTOR = "on_data_landed"
SCHEMA_KEY = "datasets/schema"
FINAL = ("accepted", "quarantined")


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
    key = record_key(message.blob_name, blob.info.etag)
    document = workflow.acquire(deps, key)
    if document is None:
        if deps.state.get(key) is not None:
            return  # handled already, or in the hands of another worker
        document = _claim(message.blob_name, blob.info.etag, blob.data, event_id, deps, actor)
        if document is None:
            return  # a concurrent delivery claimed it first
    with workflow.held(deps, document):
        resume_file(document, deps, blob.data, actor)


def resume_file(document: Document, deps: Deps, data: bytes | None, actor: str = ACTOR) -> None:
    """Finish the steps a file's record still needs; every step may already have happened."""
    body = document.body
    if body["status"] in FINAL:
        workflow.release(deps, document)
        return
    containers = deps.settings.containers
    if data is None:
        blob = deps.blobs.read(containers.landing, body["blob"])
        data = blob.data if blob is not None and blob.info.etag == body["etag"] else None
    if body["status"] == "quarantining":
        _quarantine(body, data, deps)
        workflow.finish(deps, document, {"status": "quarantined"})
        return
    if data is None:
        stored = deps.blobs.read(containers.datasets, body.get("path") or "")
        data = stored.data if stored is not None else None
    if data is None:
        raise LookupError(f"{body['blob']} changed or vanished before it was stored")
    path = store_file(deps.blobs, containers.datasets, body["sha256"], body["blob"], data)
    add_to_catalog(
        deps,
        {
            "sha256": body["sha256"],
            "name": body["blob"],
            "rows": body["rows"],
            "path": path,
            "event_id": body["event_id"],
        },
    )
    document = workflow.commit(deps, document, {"path": path})
    document = workflow.flush(deps, document)
    request_training(
        RequestTraining("data", body["event_id"], {"file": body["blob"], "sha256": body["sha256"]}),
        deps,
        actor,
    )
    workflow.finish(deps, document, {"status": "accepted"})


def record_key(blob_name: str, etag: str) -> str:
    digest = hashlib.sha256(f"{blob_name}\n{etag}".encode()).hexdigest()[:32]
    return f"files/{digest}"


def _claim(name: str, etag: str, data: bytes, event_id: str, deps: Deps, actor: str) -> Document | None:
    settings = deps.settings
    schema = deps.state.get(SCHEMA_KEY)
    declared = settings.data.schema
    spec = declared or (schema.body.get("spec") or schema.body["columns"] if schema else None)
    limits = Limits(settings.data.max_file_bytes, settings.data.min_rows, settings.training.target)
    result = validate(name, data, spec, limits)
    key = record_key(name, etag)
    body: dict[str, Any] = {
        "blob": name,
        "etag": etag,
        "event_id": event_id,
        "sha256": result.sha256,
        "rows": result.rows,
        "at": deps.clock().isoformat(),
    }
    if not result.ok:
        problems = [p.as_dict() for p in result.problems]
        quarantined = workflow.decision(
            actor,
            "file.quarantined",
            name,
            f"{key}:quarantined",
            event_id=event_id,
            sha256=result.sha256,
            reasons=list(result.reasons),
            problems=problems,
        )
        return workflow.create(
            deps,
            key,
            {**body, "status": "quarantining", "reasons": list(result.reasons), "problems": problems},
            quarantined,
        )
    if schema is None:
        source = "declared" if declared else "learned"
        frozen = {
            "columns": result.schema,
            "spec": (declared or result.observed).as_dict(),
            "source": source,
            "learned_from": name,
            "at": deps.clock().isoformat(),
        }
        schema = deps.state.create(SCHEMA_KEY, frozen) or deps.state.get(SCHEMA_KEY)
        if schema is not None and schema.body["learned_from"] != name and not declared:
            return _claim(name, etag, data, event_id, deps, actor)  # another file's schema froze first
    if schema is not None and schema.body["learned_from"] == name:
        deps.audit.record(
            actor,
            "schema.learned",
            name,
            key=f"{SCHEMA_KEY}:learned",
            event_id=event_id,
            source=schema.body["source"],
            columns=schema.body["columns"],
        )
    accepted = workflow.decision(
        actor,
        "file.accepted",
        name,
        f"{key}:accepted",
        event_id=event_id,
        sha256=result.sha256,
        rows=result.rows,
    )
    return workflow.create(deps, key, {**body, "status": "accepting"}, accepted)


def _quarantine(record: dict[str, Any], data: bytes | None, deps: Deps) -> None:
    """Copy first, then delete: a crash in between leaves a copy too many, never a loss."""
    containers = deps.settings.containers
    name = record["blob"]
    if data is not None:
        deps.blobs.write(containers.quarantine, name, data)
    elif deps.blobs.info(containers.quarantine, name) is None:
        raise LookupError(f"{name} is neither in landing nor in quarantine")
    reason = {
        "blob": name,
        "etag": record["etag"],
        "event_id": record["event_id"],
        "reasons": record["reasons"],
        "quarantined_at": record["at"],
    }
    deps.blobs.write(
        containers.quarantine,
        f"{name}.reason.json",
        json.dumps(reason, indent=1).encode(),
        content_type="application/json",
    )
    try:
        deps.blobs.delete(containers.landing, name, if_match=record["etag"])
    except PreconditionFailed:
        log.info("landing blob changed since; the new version is handled on its own", extra={"blob": name})
