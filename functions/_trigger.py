"""What every function module shares: the dependencies, and turning what the Functions runtime hands a
trigger into the library's typed messages. Like the function modules, it imports the library only when a
function runs (see `functions/__init__.py`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import azure.functions as func

if TYPE_CHECKING:
    from shared.deps import Deps
    from shared.domain.messages import Parsed


def deps() -> Deps:
    """The process-wide dependencies (`shared.bootstrap`), built on the first invocation."""
    from shared import bootstrap

    return bootstrap.deps()


def parse(event: func.EventGridEvent | func.CloudEvent) -> Parsed:
    """Event Grid schema and CloudEvents 1.0 deliveries become the same message; a field of the wrong type
    becomes a rejection the function records."""
    from shared.domain.messages import from_trigger

    if isinstance(event, func.CloudEvent):
        fields: dict[str, Any] = {"event_type": event.type, "topic": event.source, "time": event.time}
    else:
        fields = {"event_type": event.event_type, "topic": event.topic, "time": event.event_time}
    return from_trigger(id=event.id, subject=event.subject, data=event.get_json(), **fields)


def json_response(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, indent=1, default=str), status_code=status, mimetype="application/json"
    )
