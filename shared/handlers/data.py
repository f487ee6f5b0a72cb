"""New data landed: validate it, quarantine what fails, keep what passes, ask for training."""

from __future__ import annotations

import hashlib
import json
import logging

from shared.bootstrap import Deps
from shared.datasets import store_file
from shared.handlers.requests import add_to_catalog, request_training
from shared.messages import BlobCreated, RequestTraining
from shared.validation import Limits, validate

log = logging.getLogger(__name__)
ACTOR = "on_data_landed"
SCHEMA_KEY = "datasets/schema"


def on_blob_created(message: BlobCreated, deps: Deps) -> None:
    settings = deps.settings
    event_id = message.envelope.id
    if message.container != settings.containers.landing:
        deps.audit.record(
            ACTOR,
            "event.ignored",
            message.envelope.subject,
            event_id=event_id,
            reason=f"container {message.container!r} is not the landing container",
        )
        return
    blob = deps.blobs.read(settings.containers.landing, message.blob_name)
    if blob is None:
        # Already moved to quarantine by an earlier delivery, or deleted by its owner: nothing to lose.
        log.info("landed blob is gone", extra={"event_id": event_id, "blob": message.blob_name})
        return
    record_key = f"files/{_version_key(message.blob_name, blob.info.etag)}"
    if deps.state.get(record_key) is not None:
        return  # this blob version was handled already
    schema_doc = deps.state.get(SCHEMA_KEY)
    limits = Limits(settings.max_file_bytes, settings.min_rows, settings.training.target)
    result = validate(
        message.blob_name, blob.data, schema_doc.body["columns"] if schema_doc else None, limits
    )
    record = {
        "blob": message.blob_name,
        "etag": blob.info.etag,
        "event_id": event_id,
        "sha256": result.sha256,
        "rows": result.rows,
        "at": deps.clock().isoformat(),
    }
    if not result.ok:
        _quarantine(message, blob.data, result.reasons, deps)
        deps.state.create(record_key, {**record, "status": "quarantined", "reasons": list(result.reasons)})
        deps.audit.record(
            ACTOR,
            "file.quarantined",
            message.blob_name,
            event_id=event_id,
            sha256=result.sha256,
            reasons=list(result.reasons),
        )
        return
    if schema_doc is None and deps.state.create(
        SCHEMA_KEY, {"columns": result.schema, "learned_from": message.blob_name}
    ):
        deps.audit.record(
            ACTOR, "schema.learned", message.blob_name, event_id=event_id, columns=result.schema
        )
    path = store_file(deps.blobs, settings.containers.datasets, result.sha256, message.blob_name, blob.data)
    add_to_catalog(
        deps,
        {
            "sha256": result.sha256,
            "name": message.blob_name,
            "rows": result.rows,
            "path": path,
            "event_id": event_id,
        },
    )
    if deps.state.create(record_key, {**record, "status": "accepted", "path": path}) is None:
        return  # a concurrent delivery of the same blob version got here first and asked for training
    deps.audit.record(
        ACTOR, "file.accepted", message.blob_name, event_id=event_id, sha256=result.sha256, rows=result.rows
    )
    request_training(RequestTraining("data", event_id, {"file": message.blob_name}), deps, ACTOR)


def _quarantine(message: BlobCreated, data: bytes, reasons: tuple[str, ...], deps: Deps) -> None:
    """Copy first, then delete: a crash in between leaves a duplicate, never a loss."""
    containers = deps.settings.containers
    deps.blobs.write(containers.quarantine, message.blob_name, data)
    reason = {
        "blob": message.blob_name,
        "event_id": message.envelope.id,
        "reasons": list(reasons),
        "quarantined_at": deps.clock().isoformat(),
    }
    deps.blobs.write(
        containers.quarantine,
        f"{message.blob_name}.reason.json",
        json.dumps(reason, indent=1).encode(),
        content_type="application/json",
    )
    deps.blobs.delete(containers.landing, message.blob_name)


def _version_key(blob_name: str, etag: str) -> str:
    return hashlib.sha256(f"{blob_name}\n{etag}".encode()).hexdigest()[:32]
