"""The door every event passes: malformed events and events from foreign topics are recorded and dropped.

A rejection is not an error: returning normally acknowledges the delivery, so Event Grid does not retry
something that can never succeed, and the audit log says why it was refused.
"""

from __future__ import annotations

import logging

from shared.config import Topics
from shared.deps import Deps
from shared.domain.messages import (
    Announcement,
    BlobCreated,
    BlobDeleted,
    DriftDetected,
    Message,
    ModelDeployed,
    ModelRegistered,
    MonitorAlert,
    Parsed,
    Rejected,
    RunCompleted,
    RunStatusChanged,
    UnknownEvent,
)

log = logging.getLogger(__name__)


def admit(parsed: Parsed, expected: tuple[type, ...], deps: Deps, actor: str) -> Message | None:
    """The typed message if this function should act on it; otherwise record why not and return None."""
    if isinstance(parsed, Rejected):
        return _reject(parsed.envelope.id if parsed.envelope else "", parsed.reason, deps, actor)
    if isinstance(parsed, UnknownEvent) or not isinstance(parsed, expected):
        envelope = parsed.envelope
        return _reject(
            envelope.id, f"event type {envelope.event_type} is not handled by {actor}", deps, actor
        )
    topic = expected_topic(parsed, deps.settings.topics)
    if parsed.envelope.topic.lower() != topic.lower():
        reason = f"topic {parsed.envelope.topic or '(none)'} is not the configured {topic}"
        return _reject(parsed.envelope.id, reason, deps, actor)
    log.info(
        "event admitted", extra={"event_id": parsed.envelope.id, "event_type": parsed.envelope.event_type}
    )
    return parsed


def expected_topic(message: Message, topics: Topics) -> str:
    if isinstance(message, BlobCreated | BlobDeleted):
        return topics.storage
    if isinstance(message, DriftDetected | Announcement):
        return topics.custom
    if isinstance(message, RunCompleted | RunStatusChanged | MonitorAlert | ModelRegistered | ModelDeployed):
        return topics.workspace
    raise TypeError(f"no topic known for {type(message).__name__}")


MAX_REASON = 1000  # characters of a rejection's reason kept: it may quote what the sender put in a field


def _reject(event_id: str, reason: str, deps: Deps, actor: str) -> None:
    reason = reason if len(reason) <= MAX_REASON else f"{reason[: MAX_REASON - 3]}..."
    log.warning("event rejected", extra={"event_id": event_id, "reason": reason})
    deps.audit.record(actor, "event.rejected", event_id or "(no id)", reason=reason)
    return None
