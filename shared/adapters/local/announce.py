"""A local job's end, announced as Azure ML announces it: a RunCompleted (or a RunStatusChanged with the final
status) in Azure ML's documented event schema, from the experiment's runs, to the local host's workspace topic."""

from __future__ import annotations

import uuid
from typing import Any

from shared.adapters.local.paths import topic_endpoint
from shared.config import Settings
from shared.domain.messages import RUN_COMPLETED, RUN_STATUS_CHANGED


def announce(
    run_id: str,
    status: str,
    settings: Settings,
    experiment: str,
    tags: dict[str, str],
    properties: dict[str, Any],
) -> None:
    from azure.core.credentials import AzureKeyCredential
    from azure.eventgrid import EventGridEvent, EventGridPublisherClient

    data: dict[str, Any] = {
        "experimentId": experiment,
        "experimentName": experiment,
        "runId": run_id,
        "runType": "command",
        "runTags": tags,
        "runProperties": properties,
    }
    event_type = RUN_COMPLETED
    if status != "Completed":
        event_type, data["runStatus"] = RUN_STATUS_CHANGED, status
    event = EventGridEvent(
        id=str(uuid.uuid4()),
        subject=f"experiments/{experiment}/runs/{run_id}",
        event_type=event_type,
        data=data,
        data_version="2",
        topic=settings.topics.workspace,
    )
    client = EventGridPublisherClient(
        topic_endpoint(settings.local.host_url, "workspace"), AzureKeyCredential(settings.events.key)
    )
    client.send([event])
