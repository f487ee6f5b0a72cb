"""The local job announces its end as Azure ML does, from the configured experiment, so the routing table's run
routes deliver it to on_run_completed locally exactly as they would in Azure."""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.local import run_job
from shared.config import Settings, experiment_name
from shared.host import routing


def announced(monkeypatch: pytest.MonkeyPatch, status: str, env: dict[str, str]) -> dict[str, Any]:
    """The event `_announce` sends, in the Event Grid schema it goes over the wire in."""
    sent: list[Any] = []

    class Client:
        def __init__(self, endpoint: str, credential: Any) -> None:
            pass

        def send(self, events: list[Any]) -> None:
            sent.extend(events)

    monkeypatch.setattr("azure.eventgrid.EventGridPublisherClient", Client)
    settings = Settings.from_env(env)
    job = {"run_id": "train-abc", "dataset_version": "ds-1", "tags": {"mlops.run_id": "train-abc"}}
    run_job._announce(job, status, settings, experiment_name(settings.raw))
    [event] = sent
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": str(event.event_time),
        "data": event.data,
        "dataVersion": event.data_version,
    }


@pytest.mark.parametrize(
    ("status", "route"), [("Completed", "run-completed"), ("Failed", "run-ended"), ("Canceled", "run-ended")]
)
@pytest.mark.parametrize("experiment", ["", "churn-local"])
def test_a_local_job_end_passes_the_run_routes_filters(
    monkeypatch: pytest.MonkeyPatch, status: str, route: str, experiment: str
) -> None:
    env = {"MLOPS_AZURE_EXPERIMENT": experiment} if experiment else {}
    event = announced(monkeypatch, status, env)
    settings = Settings.from_env(env)
    table = routing.load(settings.containers, experiment=experiment_name(settings.raw))

    assert event["data"]["experimentName"] == (experiment or "mlops")
    assert [s.name for s in table if s.matches("workspace", event)] == [route]
    # and a table expecting another experiment would drop it
    other = routing.load(settings.containers, experiment="not-this-one")
    assert [s.name for s in other if s.matches("workspace", event)] == []
