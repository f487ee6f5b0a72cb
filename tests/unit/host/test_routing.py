"""The routing table as the local host reads and applies it: placeholders filled in, refusals named, and the
run and monitor routes deciding who gets which Azure ML event."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shared.config import Containers, Settings
from shared.host import routing
from shared.host.delivery import Dispatcher
from shared.host.filters import AdvancedFilter
from tests.fakes import InMemoryBlobStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "events"
CONTAINERS = Settings.from_env({}).containers
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"


def fixture(name: str) -> dict[str, Any]:
    [event] = json.loads((FIXTURES / f"{name}.eventgrid.json").read_text())
    return event


def run_event(event_type: str, **data: Any) -> dict[str, Any]:
    return {
        "id": "evt-1",
        "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w",
        "subject": "experiments/mlops/runs/run-1",
        "eventType": event_type,
        "eventTime": "2026-01-01T00:00:00Z",
        "dataVersion": "2",
        "data": {"experimentId": "mlops", "runId": "run-1", "runType": "command", "runTags": {}, **data},
    }


def routed(event: dict[str, Any], topic: str = "workspace", experiment: str = "mlops") -> list[str]:
    table = routing.load(CONTAINERS, experiment=experiment)
    return [s.name for s in table if s.matches(topic, event)]


BREACH = fixture("model_monitor_breach")["data"]["runTags"]["azureml_modelmonitor_threshold_breached"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (run_event(RUN_COMPLETED, experimentName="mlops"), ["run-completed"]),
        (run_event(RUN_COMPLETED, experimentName="MLOps"), ["run-completed"]),  # values compare without case
        (run_event(RUN_COMPLETED, experimentName="someone-elses"), []),
        (run_event(RUN_COMPLETED), []),  # no experiment named: not ours
        (run_event(RUN_STATUS_CHANGED, experimentName="mlops", runStatus="Failed"), ["run-ended"]),
        (run_event(RUN_STATUS_CHANGED, experimentName="mlops", runStatus="canceled"), ["run-ended"]),
        (run_event(RUN_STATUS_CHANGED, experimentName="mlops", runStatus="Completed"), ["run-ended"]),
        (run_event(RUN_STATUS_CHANGED, experimentName="mlops", runStatus="Running"), []),
        (run_event(RUN_STATUS_CHANGED, experimentName="mlops", runStatus="Finalizing"), []),
        (run_event(RUN_STATUS_CHANGED, experimentName="other", runStatus="Failed"), []),
        (run_event(RUN_STATUS_CHANGED, experimentName="mlops"), []),
        (fixture("run_status_changed"), []),  # Microsoft's sample: an AutoML run of another experiment
        (fixture("model_monitor_breach"), ["model-monitor-breach"]),
        (
            run_event(RUN_STATUS_CHANGED, experimentName="mon", runStatus="Failed", runTags={"other": "tag"}),
            [],
        ),
        (
            run_event(
                RUN_STATUS_CHANGED,
                experimentName="mon",
                runStatus="Running",
                runTags={"AZUREML_MODELMONITOR_THRESHOLD_BREACHED": BREACH.upper()},
            ),
            ["model-monitor-breach"],
        ),
        (
            run_event(
                RUN_STATUS_CHANGED,
                experimentName="mon",
                runStatus="Completed",
                runTags={"azureml_modelmonitor_threshold_breached": "some other text"},
            ),
            [],
        ),
        (run_event("Microsoft.MachineLearningServices.DatasetDriftDetected", driftCoefficient=0.8), []),
    ],
)
def test_the_run_and_monitor_routes_pick_their_events(event: dict[str, Any], expected: list[str]) -> None:
    assert routed(event) == expected


def test_the_run_routes_follow_the_configured_experiment() -> None:
    event = run_event(RUN_COMPLETED, experimentName="churn")
    assert routed(event, experiment="churn") == ["run-completed"]
    assert routed(event, experiment="mlops") == []


def test_events_on_another_topic_match_nothing_of_the_workspaces() -> None:
    assert routed(fixture("model_monitor_breach"), topic="mlops") == []


def test_placeholders_are_filled_in(tmp_path: Path) -> None:
    raw = json.loads(routing.TABLE.read_text())
    containers = Containers(**{**vars(CONTAINERS), "landing": "incoming"})
    table = {s.name: s for s in routing.load(containers, experiment="churn")}
    assert table["data-landed"].subject_begins_with == "/blobServices/default/containers/incoming/blobs/"
    assert (
        AdvancedFilter("StringIn", "data.experimentName", ("churn",))
        in table["run-completed"].advanced_filters
    )
    assert [s["name"] for s in raw["subscriptions"]] == list(table)


def _table(tmp_path: Path, change: dict[str, Any]) -> Path:
    raw = json.loads(routing.TABLE.read_text())
    entry = copy.deepcopy(next(s for s in raw["subscriptions"] if s["name"] == "run-completed"))
    entry.update(change)
    raw["subscriptions"] = [entry]
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"advanced_filters": [{"operatorType": "StringIn", "key": "data.a", "values": ["{exp}"]}]}, "{exp}"),
        ({"subject_begins_with": "{landing"}, "subscription 'run-completed': '{landing'"),
        ({"filters": []}, "unknown filters"),
        (
            {"advanced_filters": [{"operatorType": "NumberIn", "key": "data.a", "values": [1] * 26}]},
            "26 filter",
        ),
        ({"enable_advanced_filtering_on_arrays": 1}, "true or false"),
    ],
)
def test_a_table_event_grid_would_refuse_is_refused_naming_the_subscription(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(routing.RoutingError, match="subscription 'run-completed'") as error:
        routing.load(CONTAINERS, _table(tmp_path, change), experiment="mlops")
    assert message in str(error.value)


def test_a_subscription_without_its_function_is_refused(tmp_path: Path) -> None:
    raw = json.loads(routing.TABLE.read_text())
    del raw["subscriptions"][0]["function"]
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(routing.RoutingError, match="'data-landed': missing function"):
        routing.load(CONTAINERS, path, experiment="mlops")


def test_the_dispatcher_queues_only_what_the_filters_let_through() -> None:
    """Nothing is delivered here (the workers are not started): `publish` says how many deliveries it queued."""
    delivered: list[str] = []
    dispatcher = Dispatcher(
        routing.load(CONTAINERS, experiment="mlops"),
        lambda function, event: delivered.append(function),
        InMemoryBlobStore(),
        CONTAINERS.deadletter,
        retry_seconds=(),
    )
    running = run_event(RUN_STATUS_CHANGED, experimentName="mlops", runStatus="Running")
    failed = run_event(RUN_STATUS_CHANGED, experimentName="mlops", runStatus="Failed")
    assert dispatcher.publish("workspace", [running]) == 0
    assert dispatcher.publish("workspace", [failed, fixture("model_monitor_breach")]) == 2
    assert dispatcher.pending() == 2
