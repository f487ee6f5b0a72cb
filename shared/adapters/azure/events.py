"""Publishing `MLOps.*` events to the custom topic with azure-eventgrid's EventGridPublisherClient."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from shared.ports import OutgoingEvent

DATA_VERSION = "1.0"


class EventGridPublisher:
    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def create(cls, endpoint: str, credential: Any) -> EventGridPublisher:
        from azure.eventgrid import EventGridPublisherClient

        return cls(EventGridPublisherClient(endpoint, credential))

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        from azure.eventgrid import EventGridEvent

        self._client.send(
            [
                EventGridEvent(
                    subject=event.subject,
                    event_type=event.event_type,
                    data=event.data,
                    data_version=DATA_VERSION,
                    id=event.id or str(uuid.uuid4()),
                )
                for event in events
            ]
        )
