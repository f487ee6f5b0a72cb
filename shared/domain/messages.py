"""Typed messages: facts (past tense) parsed from Event Grid / CloudEvents deliveries, and commands.

Real deliveries differ from the documentation samples: keys come PascalCase or camelCase, versions as numbers
or strings, several events arrive in one array, and subscriptions may use the CloudEvents 1.0 schema. Parsing
is therefore case-insensitive and schema-agnostic; anything we cannot read becomes a `Rejected` message
(recorded by the caller, never retried) rather than an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlparse

from shared.domain.event_fields import (
    MALFORMED,
    CaseInsensitive,
    base64_data,
    event_time,
    is_unicode,
    json_data,
    strict_text,
    version_text,
)
from shared.domain.event_fields import (
    kind as kind_of,
)

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
BLOB_DELETED = "Microsoft.Storage.BlobDeleted"
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
MODEL_DEPLOYED = "Microsoft.MachineLearningServices.ModelDeployed"
DRIFT_DETECTED = "MLOps.DriftDetected"
# What this app announces on its custom topic for people and other systems (besides drift, parsed on its own).
ANNOUNCEMENTS = (
    "MLOps.ApprovalRequested",
    "MLOps.ModelPromoted",
    "MLOps.ReleaseRolledBack",
    "MLOps.PerformanceDegraded",
    "MLOps.RunFailed",
    "MLOps.FilesQuarantined",
)

# The run tag Azure ML's model monitoring (v2) sets on the run of a signal's threshold evaluation when a metric
# breaches its threshold; its text begins "The signal '<monitor>_<signal>' has failed due to one or more
# features violating metric thresholds." (Azure/azureml-assets, model_monitor_evaluate_metrics_threshold).
MONITOR_BREACH_TAG = "azureml_modelmonitor_threshold_breached"
# An Azure ML job's name (and a run's id): our state keys runs by it, so nothing else is taken as one
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_BREACHED_SIGNAL = re.compile(r"\bsignal\s+'(?P<name>[^']+)'\s+has failed", re.IGNORECASE)

TERMINAL_RUN_STATUSES = {
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
    "cancelled": "Canceled",
}


@dataclass(frozen=True)
class Envelope:
    """What every event carries, whatever its schema."""

    id: str
    event_type: str
    topic: str
    subject: str
    time: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class BlobCreated:
    envelope: Envelope
    container: str
    blob_name: str
    url: str
    etag: str
    content_length: int
    content_type: str


@dataclass(frozen=True)
class BlobDeleted:
    """A blob was deleted. The event names no ETag: which version went is for the store to say now."""

    envelope: Envelope
    container: str
    blob_name: str
    url: str
    sequencer: str


@dataclass(frozen=True)
class RunCompleted:
    """A run reached a terminal status (from RunCompleted, or RunStatusChanged to a terminal status)."""

    envelope: Envelope
    run_id: str
    experiment_name: str
    status: str
    tags: dict[str, Any]
    properties: dict[str, Any]


@dataclass(frozen=True)
class RunStatusChanged:
    """A non-terminal status change; nothing to do but acknowledge."""

    envelope: Envelope
    run_id: str
    status: str


@dataclass(frozen=True)
class MonitorAlert:
    """An Azure ML model monitor found a signal over its thresholds: a RunStatusChanged of the run that evaluated
    the thresholds, tagged `azureml_modelmonitor_threshold_breached`. A drift alert for the managed model."""

    envelope: Envelope
    run_id: str
    experiment_name: str
    status: str
    signal: str  # the breached signal as the tag names it (`<monitor>_<signal>`); "" if its text does not
    breach: str  # the tag's text: which features broke which thresholds


@dataclass(frozen=True)
class ModelRegistered:
    envelope: Envelope
    model_name: str
    model_version: str
    tags: dict[str, Any]
    properties: dict[str, Any]


@dataclass(frozen=True)
class ModelDeployed:
    envelope: Envelope
    service_name: str
    model_ids: tuple[str, ...]


@dataclass(frozen=True)
class DriftDetected:
    envelope: Envelope
    drift_share: float | None
    drifted_columns: tuple[str, ...]
    report_url: str
    model_name: str
    model_version: str


@dataclass(frozen=True)
class Announcement:
    """A fact this app published on its custom topic for people and other systems (`ANNOUNCEMENTS`): an approval
    requested, a promotion, a rollback, degraded performance, a run failed for good, files quarantined. Its
    data stays as published; whoever reads it reads it defensively."""

    envelope: Envelope


@dataclass(frozen=True)
class Rejected:
    """An event we will not act on, with the reason; recorded in the audit log and acknowledged."""

    envelope: Envelope | None
    reason: str
    raw: Any = field(repr=False, default=None)


@dataclass(frozen=True)
class UnknownEvent:
    envelope: Envelope


Message = (
    BlobCreated
    | BlobDeleted
    | RunCompleted
    | RunStatusChanged
    | MonitorAlert
    | ModelRegistered
    | ModelDeployed
    | DriftDetected
    | Announcement
)
Parsed = Message | Rejected | UnknownEvent


# --- commands -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestTraining:
    """Ask for a training run; requests coalesce until the quiet period is over."""

    cause: str
    event_id: str
    detail: dict[str, Any] = field(default_factory=dict)


# --- parsing --------------------------------------------------------------------------------------------------


def parse_body(body: bytes | str | Any) -> list[Parsed]:
    """Parse a webhook body: one event or an array, Event Grid or CloudEvents schema."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError as error:  # not JSON, not UTF-8, or a number past Python's limit on digits
            return [Rejected(None, f"body is not JSON: {str(error)[:200]}")]
        except RecursionError:
            return [Rejected(None, "body is nested too deeply to be events")]
    items: Iterable[Any] = body if isinstance(body, list) else [body]
    return [parse_event(item) for item in items]


def parse_event(item: Any) -> Parsed:
    if not isinstance(item, Mapping):
        return Rejected(None, f"event is a {type(item).__name__}, not an object", item)
    event = CaseInsensitive(item)
    try:
        envelope = _envelope(event)
    except MALFORMED as error:
        return Rejected(_identified(event), str(error), dict(item))
    try:
        return _typed(envelope)
    except MALFORMED as error:
        return Rejected(envelope, f"{envelope.event_type} data is malformed: {error}", dict(item))


def envelope_of(
    *, id: str, event_type: str, topic: str, subject: str, data: Any, time: datetime | None = None
) -> Envelope:
    """Build an envelope from already-split fields (as the Functions runtime hands them to a trigger)."""
    return Envelope(
        id=id,
        event_type=event_type,
        topic=topic or "",
        subject=subject or "",
        time=time or datetime.now(UTC),
        data=data if isinstance(data, dict) else json_data(data),
    )


def from_trigger(
    *, id: Any, event_type: Any, topic: Any, subject: Any, data: Any, time: datetime | None = None
) -> Parsed:
    """The message in what the Functions runtime hands a trigger (its fields, decoded but unchecked): any JSON
    value in any field gives a message or a `Rejected`, never an exception."""
    texts: dict[str, str] = {}
    for name, value in (("id", id), ("type", event_type), ("topic", topic), ("subject", subject)):
        if value is not None and not isinstance(value, str):
            return Rejected(None, f"event {name} is {kind_of(value)}, not text")
        if value is not None and not is_unicode(value):
            return Rejected(None, f"event {name} is not Unicode text (it holds a lone surrogate)")
        texts[name] = value or ""
    envelope = Envelope(
        id=texts["id"],
        event_type=texts["type"],
        topic=texts["topic"],
        subject=texts["subject"],
        time=time if isinstance(time, datetime) else datetime.now(UTC),
        data={},
    )
    if not envelope.id or not envelope.event_type:
        return Rejected(envelope if envelope.id else None, "event has no id or type")
    try:
        envelope = replace(envelope, data=json_data(data))
    except MALFORMED as error:
        return Rejected(envelope, f"{envelope.event_type} data is malformed: {error}")
    return typed(envelope)


def typed(envelope: Envelope) -> Parsed:
    try:
        return _typed(envelope)
    except MALFORMED as error:
        return Rejected(envelope, f"{envelope.event_type} data is malformed: {error}")


def _identified(event: CaseInsensitive) -> Envelope | None:
    """What a rejection can still say of an event whose envelope is malformed: its id, if that is text."""
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id or not is_unicode(event_id):
        return None
    event_type = event.get("type", event.get("eventType"))
    return Envelope(
        id=event_id,
        event_type=event_type if isinstance(event_type, str) and is_unicode(event_type) else "",
        topic="",
        subject="",
        time=datetime.now(UTC),
        data={},
    )


def _envelope(event: CaseInsensitive) -> Envelope:
    is_cloud_event = "specversion" in {key.lower() for key in event}
    event_id = event.text("id")
    event_type = event.text("type") if is_cloud_event else event.text("eventType")
    if not event_id or not event_type:
        raise ValueError("event has no id or type")
    topic = event.text("source") if is_cloud_event else event.text("topic")
    time_text = event.text("time") if is_cloud_event else event.text("eventTime")
    data = event.get("data")
    if data is None and is_cloud_event and event.get("data_base64"):
        data = base64_data(event.text("data_base64"))
    return Envelope(
        id=event_id,
        event_type=event_type,
        topic=topic,
        subject=event.text("subject"),
        time=event_time(time_text),
        data=json_data(data),
    )


def _typed(envelope: Envelope) -> Parsed:
    kind = envelope.event_type.lower()
    data = CaseInsensitive(envelope.data)
    if kind == BLOB_CREATED.lower():
        container, blob_name = _blob_location(envelope.subject, data.text("url"))
        return BlobCreated(
            envelope=envelope,
            container=container,
            blob_name=blob_name,
            url=data.text("url"),
            etag=data.text("eTag"),
            content_length=data.count("contentLength"),
            content_type=data.text("contentType"),
        )
    if kind == BLOB_DELETED.lower():
        container, blob_name = _blob_location(envelope.subject, data.text("url"))
        return BlobDeleted(envelope, container, blob_name, data.text("url"), data.text("sequencer"))
    if kind == RUN_STATUS_CHANGED.lower() and (breach := _monitor_breach(data)) is not None:
        return _monitor_alert(envelope, data, breach)
    if kind in (RUN_COMPLETED.lower(), RUN_STATUS_CHANGED.lower()):
        run_id = data.text("runId") or envelope.subject.rsplit("/runs/", 1)[-1]
        if not run_id:
            raise ValueError("no runId")
        if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
            raise ValueError(
                f"runId {run_id[:80]!r} is not a run's name (letters, digits, '-', '_' and '.', at most 255)"
            )
        status_text = data.text("runStatus", "completed" if kind == RUN_COMPLETED.lower() else "")
        status = TERMINAL_RUN_STATUSES.get(status_text.lower())
        if status is None:
            return RunStatusChanged(envelope=envelope, run_id=run_id, status=status_text)
        return RunCompleted(
            envelope=envelope,
            run_id=run_id,
            experiment_name=data.text("experimentName"),
            status=status,
            tags=data.mapping("runTags"),
            properties=data.mapping("runProperties"),
        )
    if kind == MODEL_REGISTERED.lower():
        name, version = data.text("modelName"), data.version("modelVersion")
        if not name or not version:
            subject_id = envelope.subject.removeprefix("models/")
            name, _, version = subject_id.rpartition(":")
        if not name or not version:
            raise ValueError("no modelName / modelVersion")
        return ModelRegistered(
            envelope=envelope,
            model_name=name,
            model_version=version_text(version),
            tags=data.mapping("modelTags"),
            properties=data.mapping("modelProperties"),
        )
    if kind == MODEL_DEPLOYED.lower():
        ids = tuple(part.strip() for part in data.text("modelIds").split(",") if part.strip())
        return ModelDeployed(envelope=envelope, service_name=data.text("serviceName"), model_ids=ids)
    if kind == DRIFT_DETECTED.lower():
        return DriftDetected(
            envelope=envelope,
            drift_share=data.fraction("driftShare"),
            drifted_columns=data.texts("driftedColumns"),
            report_url=data.text("reportUrl"),
            model_name=data.text("modelName"),
            model_version=data.version("modelVersion"),
        )
    if kind in (name.lower() for name in ANNOUNCEMENTS):
        return Announcement(envelope)
    return UnknownEvent(envelope)


def _monitor_breach(data: CaseInsensitive) -> Any:
    """The breach tag's value when the run's tags carry one that says something, else None."""
    tags = data.get("runTags")
    if not isinstance(tags, Mapping):
        return None
    breach = CaseInsensitive(tags).get(MONITOR_BREACH_TAG)
    return None if breach is None or (isinstance(breach, str) and not breach.strip()) else breach


def _monitor_alert(envelope: Envelope, data: CaseInsensitive, breach: Any) -> MonitorAlert:
    """Strict, unlike the other run events: retraining hangs on these fields, so a value of the wrong type is
    a rejection rather than its text."""
    if not isinstance(breach, str):
        raise ValueError(f"runTags.{MONITOR_BREACH_TAG} is {kind_of(breach)}, not text")
    if not is_unicode(breach):
        raise ValueError(f"runTags.{MONITOR_BREACH_TAG} is not Unicode text (it holds a lone surrogate)")
    run_id = strict_text(data, "runId") or envelope.subject.rpartition("/runs/")[2]
    if not run_id:
        raise ValueError("no runId, in the data or the subject")
    found = _BREACHED_SIGNAL.search(breach)
    return MonitorAlert(
        envelope=envelope,
        run_id=run_id,
        experiment_name=strict_text(data, "experimentName"),
        status=strict_text(data, "runStatus"),
        signal=found["name"].strip() if found else "",
        breach=breach.strip(),
    )


def _blob_location(subject: str, url: str) -> tuple[str, str]:
    marker = "/containers/"
    if marker in subject and "/blobs/" in subject:
        container, blob_name = subject.split(marker, 1)[1].split("/blobs/", 1)
        return container, blob_name
    path = unquote(urlparse(url).path).lstrip("/")
    parts = path.split("/", 2)
    if len(parts) == 3 and parts[0] == "devstoreaccount1":  # Azurite puts the account in the path
        parts = parts[1:]
    if len(parts) >= 2:
        return parts[0], "/".join(parts[1:])
    raise ValueError(f"cannot find container and blob in subject {subject!r} or url {url!r}")
