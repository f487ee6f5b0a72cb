"""Late labels landed: validate the file, match its ids to served rows, file the labels or quarantine the file.

Label files land in a container of their own (`MLOPS_CONTAINER_LABELS`), never in landing: everything in
landing is training data (the data handler, the reconcile sweep and the `data-landed` route all say so), and
a label file validated as training data would be quarantined for want of features, or worse, accepted.

One record per blob version (`labels/files/<hash of name and ETag>`) is the claim, as for data files. The
claim validates the file (`shared.domain.labels`) and matches its correlation ids to the rows served in the
quality window (`MLOPS_QUALITY_WINDOW_HOURS`, up to now): a label for a row served earlier can never enter a
check. Ids that match nothing are counted per file; a file where none match is quarantined, since nothing in
it can ever be used (a wrong file, a wrong endpoint, or labels for traffic older than the window). Accepted
labels are filed by the deployment and hour that served their rows (`shared.state.labels`).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.deps import Deps
from shared.domain.labels import UNMATCHED_IDS, LabelValidation, validate_labels
from shared.domain.messages import BlobCreated, Envelope
from shared.domain.validation import as_schema
from shared.handlers import release_shadow
from shared.handlers.data import quarantine_blob
from shared.handlers.isolation import each
from shared.handlers.sweeps import sweep_changed
from shared.ports import BlobInfo
from shared.state import keys, traffic
from shared.state import labels as store
from shared.state.lease import Creation, Held, decision, lease, needs_attention
from shared.state.records import FileStatus, LabelFile, QuarantineNote
from shared.state.store import Stored

log = logging.getLogger(__name__)
ACTOR = "on_labels_landed"
QUARANTINE_FOLDER = (
    "labels/"  # quarantined label files sit apart from quarantined data files of the same name
)


@dataclass
class Matches:
    """Labels whose ids name served rows, by (deployment, hour served)."""

    by_hour: dict[tuple[str, datetime], list[tuple[str, Any]]] = field(default_factory=dict)
    matched: int = 0
    unmatched: int = 0


def on_labels_landed(message: BlobCreated, deps: Deps, actor: str = ACTOR) -> None:
    containers = deps.settings.containers
    if message.container != containers.labels:
        deps.audit.record(
            actor,
            "event.ignored",
            message.envelope.subject,
            event_id=message.envelope.id,
            reason=f"container {message.container!r} is not the labels container",
        )
        return
    blob = deps.blobs.read(containers.labels, message.blob_name)
    if blob is None:
        log.info("label file is gone", extra={"event_id": message.envelope.id, "blob": message.blob_name})
        return
    key = keys.label_file(message.blob_name, blob.info.etag)
    found: list[Matches] = []  # what the claim matched, so the filing step need not read the traffic again

    def claim() -> Creation[LabelFile]:
        return _claim(message.blob_name, blob.info.etag, blob.data, message.envelope.id, deps, actor, found)

    with lease(deps, key, create=claim) as held:
        if held is not None:
            resume_label_file(held, deps, blob.data, found[0] if found else None)


def resume_label_file(
    held: Held[LabelFile], deps: Deps, data: bytes | None, matches: Matches | None = None
) -> None:
    """Finish the steps a label file's record still needs; every step may already have happened."""
    record = held.record
    if record.status.final:
        return
    containers = deps.settings.containers
    if data is None:
        blob = deps.blobs.read(containers.labels, record.blob)
        data = blob.data if blob is not None and blob.info.etag == record.etag else None
    if record.status is FileStatus.QUARANTINING:
        reason = {
            "blob": record.blob,
            "etag": record.etag,
            "event_id": record.event_id,
            "reasons": list(record.reasons),
            "matched": record.matched,
            "unmatched": record.unmatched,
            "quarantined_at": record.at,
        }
        target = QUARANTINE_FOLDER + record.blob
        quarantine_blob(deps, containers.labels, record.blob, record.etag, reason, target)
        # in the burst's one notification, beside quarantined data files (`notify.summarise_quarantined`)
        note = QuarantineNote(
            f"{containers.labels}/{record.blob}", deps.clock().isoformat(), record.reasons[:3]
        )
        deps.state.put(keys.quarantine_note(held.key), note)
        held.change(dataclasses.replace(record, status=FileStatus.QUARANTINED))
        return
    at = datetime.fromisoformat(record.at)
    if matches is None:
        if data is None:
            raise LookupError(f"label file {record.blob} changed or vanished before its labels were filed")
        # The classes were checked when the file was claimed; a schema learned since must not undo that.
        result = _validate(record.blob, data, deps, classes=False)
        matches = match(deps, result.labels, at)
    stored = store.write(deps.blobs, containers.datasets, at, record.sha256, matches.by_hour)
    held.change(dataclasses.replace(record, status=FileStatus.ACCEPTED, stored=stored))


def match(deps: Deps, labels: Mapping[str, Any], now: datetime) -> Matches:
    """Stream the rows served in the quality window up to `now` and keep the labels that name one."""
    settings = deps.settings
    since = now - timedelta(hours=settings.quality.window_hours)
    endpoint = settings.endpoint_name
    container = settings.containers.inference
    found = Matches()
    seen: set[str] = set()
    names = traffic.deployments(deps.blobs, container, endpoint)
    copy = release_shadow.shadowed(deps, names)
    for row in traffic.served_rows(deps.blobs, container, endpoint, names, since):
        if row.row_id in labels and row.row_id not in seen and not copy(row.deployment, row.time):
            seen.add(row.row_id)
            where = (row.deployment, store.hour_of(row.time))
            found.by_hour.setdefault(where, []).append((row.row_id, labels[row.row_id]))
    found.matched, found.unmatched = len(seen), len(labels) - len(seen)
    return found


def sweep(deps: Deps, actor: str = "reconcile") -> int:
    """Handle label file versions that have no record: their BlobCreated was lost or has not come yet."""
    container = deps.settings.containers.labels

    def handle(info: BlobInfo) -> bool:
        if deps.state.exists(keys.label_file(info.name, info.etag)):
            return False
        subject = f"/blobServices/default/containers/{container}/blobs/{info.name}"
        envelope = Envelope(
            f"reconcile:{uuid.uuid4()}",
            "reconcile",
            deps.settings.topics.storage,
            subject,
            datetime.now(UTC),
            {},
        )
        url = deps.blobs.url(container, info.name)
        on_labels_landed(
            BlobCreated(envelope, container, info.name, url, info.etag, info.size, ""), deps, actor
        )
        return True

    def handle_page(changed: list[BlobInfo]) -> int:
        return each(changed, handle, lambda info: f"{container}/{info.name}")

    return sweep_changed(deps, "labels", container, handle_page)


def resume_files(deps: Deps) -> int:
    """Label files a crashed worker left half-done (their lease has expired)."""

    def resume(stored: Stored[LabelFile]) -> bool:
        with lease(deps, stored.key) as held:
            if held is not None:
                resume_label_file(held, deps, None)
        return held is not None

    waiting = (
        stored for stored in deps.state.open(keys.LABEL_FILES) if needs_attention(stored, deps.clock())
    )
    return each(waiting, resume, lambda stored: stored.key.path)


def _claim(
    name: str, etag: str, data: bytes, event_id: str, deps: Deps, actor: str, found: list[Matches]
) -> Creation[LabelFile]:
    """Validate and match the file: the record to create, and the decision it carries."""
    now = deps.clock()
    result = _validate(name, data, deps)
    key = keys.label_file(name, etag)
    record = LabelFile(
        name, etag, event_id, result.sha256, result.rows, now.isoformat(), FileStatus.ACCEPTING, result.column
    )
    detail: dict[str, Any] = {"event_id": event_id, "sha256": result.sha256, "rows": result.rows}
    if result.ok:
        matches = match(deps, result.labels, now)
        found.append(matches)
        record = dataclasses.replace(record, matched=matches.matched, unmatched=matches.unmatched)
        detail.update(matched=matches.matched, unmatched=matches.unmatched)
        if matches.matched:
            accepted = decision(
                actor, "labels.accepted", name, f"{key}:accepted", column=result.column, **detail
            )
            return record, (accepted,)
        hours = deps.settings.quality.window_hours
        reason = (
            f"none of its {matches.unmatched} correlation ids names a row served in the last {hours:g} hours "
            "(labels must name row ids the endpoint answered with, while the quality check can still see them)"
        )
        problems: tuple[dict, ...] = ({"code": UNMATCHED_IDS, "column": "correlation_id", "message": reason},)
        reasons: tuple[str, ...] = (reason,)
    else:
        problems, reasons = tuple(p.as_dict() for p in result.problems), result.reasons
    quarantined = decision(
        actor,
        "labels.quarantined",
        name,
        f"{key}:quarantined",
        reasons=list(reasons),
        problems=list(problems),
        **detail,
    )
    record = dataclasses.replace(record, status=FileStatus.QUARANTINING, reasons=reasons, problems=problems)
    return record, (quarantined,)


def _validate(name: str, data: bytes, deps: Deps, classes: bool = True) -> LabelValidation:
    settings = deps.settings
    return validate_labels(
        name,
        data,
        task=settings.training.task,
        target=settings.training.target,
        classes=_known_classes(deps) if classes else None,
        max_bytes=settings.data.max_file_bytes,
    )


def _known_classes(deps: Deps) -> list[str] | None:
    """The target's categories, if the declared or frozen data schema knows them."""
    settings = deps.settings
    if settings.training.task == "regression":
        return None
    schema = settings.data.schema
    if schema is None:
        frozen = deps.state.get(keys.SCHEMA)
        if frozen is None or not frozen.record.spec:
            return None
        schema = as_schema(frozen.record.spec)
    spec = schema.columns.get(settings.training.target)
    if spec is None or spec.categories is None:
        return None
    return list(spec.categories)
