"""Parsing Event Grid and CloudEvents deliveries into typed messages, as they really arrive."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.domain.messages import (
    BlobCreated,
    ModelDeployed,
    ModelRegistered,
    MonitorAlert,
    Rejected,
    RunCompleted,
    RunStatusChanged,
    UnknownEvent,
    from_trigger,
    parse_body,
)

# Microsoft's documented samples of the events, kept in the repository (tests/fixtures/events/README.md).
EVENTS = Path(__file__).resolve().parents[2] / "fixtures" / "events" / "azure"


def sample(name: str) -> list[dict[str, Any]]:
    return json.loads((EVENTS / f"{name}.eventgrid.json").read_text())


def parse_one(body: Any) -> Any:
    parsed = parse_body(body if isinstance(body, str | bytes) else json.dumps(body))
    assert len(parsed) == 1
    return parsed[0]


def event(event_type: str, data: Any, **fields: Any) -> dict[str, Any]:
    return {
        "id": "evt-1",
        "eventType": event_type,
        "topic": "/subscriptions/s/providers/Microsoft.MachineLearningServices/workspaces/w",
        "subject": "models/m:1",
        "eventTime": "2024-05-06T12:00:00.1234567Z",
        "data": data,
        "dataVersion": "1",
        **fields,
    }


def without_raw_data(message: Any) -> Any:
    """The message with the raw `data` dict dropped: its keys keep the sender's spelling, by design."""
    return replace(message, envelope=replace(message.envelope, data={}))


# --- the documented samples -----------------------------------------------------------------------------------


def test_sample_blob_created_names_container_and_blob_from_the_subject() -> None:
    message = parse_one(sample("blob_created"))

    assert isinstance(message, BlobCreated)
    assert (message.container, message.blob_name) == ("test-container", "new-file.txt")
    assert message.content_length == 524288
    assert message.etag == '"0x8D4BCC2E4835CD0"'
    assert message.envelope.id == "831e1650-001e-001b-66ab-eeb76e069631"
    assert message.envelope.time == datetime(2017, 6, 26, 18, 41, 0, 958410, tzinfo=UTC)


def test_sample_run_completed_is_a_completed_run() -> None:
    message = parse_one(sample("run_completed"))

    assert isinstance(message, RunCompleted)
    assert message.status == "Completed"
    assert message.run_id == "AutoML_ad912b2d-6467-4f32-a616-dbe4af6dd8fc_5"
    assert message.experiment_name == "automl-local-regression"
    assert message.properties["run_algorithm"] == "LassoLars"


def test_sample_run_status_changed_to_failed_is_a_failed_run() -> None:
    message = parse_one(sample("run_status_changed"))

    assert isinstance(message, RunCompleted)
    assert message.status == "Failed"
    assert message.run_id == "AutoML_ad912b2d-6467-4f32-a616-dbe4af6dd8fc_5"


@pytest.mark.parametrize(
    "run_id",
    ["drift-../../state/runs/x", "a/b", "-leading-dash", "x" * 256, "name with spaces", "caf\u00e9", "a\nb"],
)
def test_a_run_id_that_is_no_job_name_is_rejected_with_the_reason(run_id: str) -> None:
    for event_type, data in (
        ("Microsoft.MachineLearningServices.RunCompleted", {"runId": run_id}),
        ("Microsoft.MachineLearningServices.RunStatusChanged", {"runId": run_id, "runStatus": "Failed"}),
    ):
        message = parse_one(event(event_type, data))

        assert isinstance(message, Rejected), event_type
        assert "is not a run's name" in message.reason


def test_job_names_azure_ml_makes_are_run_ids() -> None:
    for run_id in ("train-3f2a_b.1", "drift-20261203020000-0123abcd", "sincere_goat_k2x9", "x" * 255):
        message = parse_one(event("Microsoft.MachineLearningServices.RunCompleted", {"runId": run_id}))
        assert isinstance(message, RunCompleted) and message.run_id == run_id


def test_sample_model_registered_reads_the_numeric_version_as_text() -> None:
    message = parse_one(sample("model_registered"))

    assert isinstance(message, ModelRegistered)
    assert (message.model_name, message.model_version) == ("sklearn_regression_model", "20")
    assert message.tags == {"area": "diabetes", "type": "regression"}


def test_sample_model_deployed_lists_its_model_ids() -> None:
    message = parse_one(sample("model_deployed"))

    assert isinstance(message, ModelDeployed)
    assert message.service_name == "my-sklearn-service"
    assert message.model_ids == ("sklearn_regression_model:1", "sklearn_regression_model:2")


def test_sample_dataset_drift_detected_of_the_retired_v1_monitors_is_not_understood() -> None:
    message = parse_one(sample("dataset_drift_detected"))

    assert isinstance(message, UnknownEvent)
    assert message.envelope.event_type == "Microsoft.MachineLearningServices.DatasetDriftDetected"


# --- how real deliveries differ -------------------------------------------------------------------------------


def test_camel_case_and_pascal_case_data_keys_give_the_same_message() -> None:
    camel = event(
        "Microsoft.MachineLearningServices.ModelRegistered",
        {"modelName": "m", "modelVersion": "3", "modelTags": {"a": "1"}},
    )
    pascal = event(
        "Microsoft.MachineLearningServices.ModelRegistered",
        {"ModelName": "m", "ModelVersion": "3", "ModelTags": {"a": "1"}},
    )

    assert without_raw_data(parse_one(camel)) == without_raw_data(parse_one(pascal))


def test_envelope_keys_are_read_whatever_their_case() -> None:
    raw = event("Microsoft.Storage.BlobCreated", {"url": "https://a.blob.core.windows.net/landing/x.csv"})
    shouted = {key[0].upper() + key[1:]: value for key, value in raw.items()}
    shouted["Subject"] = "/blobServices/default/containers/landing/blobs/x.csv"

    message = parse_one(shouted)

    assert isinstance(message, BlobCreated)
    assert (message.container, message.blob_name) == ("landing", "x.csv")


@pytest.mark.parametrize("version", ["3", 3])
def test_model_version_as_string_or_integer_is_the_same_text(version: Any) -> None:
    message = parse_one(
        event(
            "Microsoft.MachineLearningServices.ModelRegistered", {"modelName": "m", "modelVersion": version}
        )
    )

    assert isinstance(message, ModelRegistered)
    assert message.model_version == "3"


def test_model_version_as_integral_float_is_the_same_text() -> None:
    message = parse_one(
        event("Microsoft.MachineLearningServices.ModelRegistered", {"modelName": "m", "modelVersion": 3.0})
    )

    assert isinstance(message, ModelRegistered)
    assert message.model_version == "3"


def test_model_registered_falls_back_to_the_subject_for_name_and_version() -> None:
    message = parse_one(
        event("Microsoft.MachineLearningServices.ModelRegistered", {}, subject="models/churn:7")
    )

    assert isinstance(message, ModelRegistered)
    assert (message.model_name, message.model_version) == ("churn", "7")


def test_a_batch_of_events_parses_each_in_order() -> None:
    body = [
        *sample("blob_created"),
        *sample("run_completed"),
        *sample("model_registered"),
        {"not": "an event"},
    ]

    parsed = parse_body(json.dumps(body).encode())

    assert [type(p) for p in parsed] == [BlobCreated, RunCompleted, ModelRegistered, Rejected]


def test_cloud_events_schema_parses_like_event_grid_schema() -> None:
    cloud_event = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/acct",
        "type": "Microsoft.Storage.BlobCreated",
        "subject": "/blobServices/default/containers/landing/blobs/folder/data.csv",
        "time": "2024-05-06T12:00:00Z",
        "datacontenttype": "application/json",
        "data": {"url": "https://acct.blob.core.windows.net/landing/folder/data.csv", "contentLength": 42},
    }

    message = parse_one(cloud_event)

    assert isinstance(message, BlobCreated)
    assert message.envelope.topic == cloud_event["source"]
    assert message.envelope.event_type == "Microsoft.Storage.BlobCreated"
    assert message.envelope.time == datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    assert (message.container, message.blob_name, message.content_length) == (
        "landing",
        "folder/data.csv",
        42,
    )


def test_blob_location_comes_from_the_url_when_the_subject_lacks_it() -> None:
    message = parse_one(
        event(
            "Microsoft.Storage.BlobCreated",
            {"url": "http://127.0.0.1:10000/devstoreaccount1/landing/a%20b.csv"},
            subject="",
        )
    )

    assert isinstance(message, BlobCreated)
    assert (message.container, message.blob_name) == ("landing", "a b.csv")


def test_run_status_changed_to_running_is_not_a_completion() -> None:
    message = parse_one(
        event("Microsoft.MachineLearningServices.RunStatusChanged", {"runId": "r1", "runStatus": "Running"})
    )

    assert isinstance(message, RunStatusChanged)
    assert (message.run_id, message.status) == ("r1", "Running")


def test_event_time_with_an_offset_keeps_the_instant() -> None:
    message = parse_one(event("MLOps.Unknown", {}, eventTime="2024-05-06T14:00:00+02:00"))

    assert message.envelope.time == datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def test_event_time_with_fractional_seconds_and_an_offset_keeps_the_instant() -> None:
    message = parse_one(event("MLOps.Unknown", {}, eventTime="2024-05-06T14:00:00.1234567+02:00"))

    assert message.envelope.time == datetime(2024, 5, 6, 12, 0, 0, 123456, tzinfo=UTC)


# --- what cannot be read is rejected, never raised ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        (b"{not json", "not JSON"),
        ("", "not JSON"),
        (json.dumps([1, "two"]), "not an object"),
        (json.dumps({"eventType": "Microsoft.Storage.BlobCreated", "data": {}}), "no id or type"),
        (json.dumps({"id": "x", "data": {}}), "no id or type"),
        (json.dumps(event("Microsoft.Storage.BlobCreated", {}, eventTime="yesterday")), "not ISO 8601"),
        (
            json.dumps(
                event("Microsoft.MachineLearningServices.ModelRegistered", {"modelVersion": 2}, subject="")
            ),
            "modelName",
        ),
        (json.dumps(event("Microsoft.MachineLearningServices.RunCompleted", [1, 2])), "not an object"),
        (
            json.dumps(event("Microsoft.Storage.BlobCreated", {"url": "nowhere"}, subject="")),
            "cannot find container",
        ),
        (json.dumps(event("MLOps.DriftDetected", {"driftShare": "lots"})), "malformed"),
    ],
)
def test_malformed_input_becomes_a_rejection_with_a_reason(body: Any, reason_part: str) -> None:
    parsed = parse_body(body)

    assert parsed, "a malformed body must still produce a Rejected message"
    assert all(isinstance(p, Rejected) for p in parsed)
    assert all(reason_part in p.reason for p in parsed), [p.reason for p in parsed]


def test_an_array_of_non_objects_gives_one_rejection_each() -> None:
    parsed = parse_body(json.dumps([1, None, "x"]))

    assert len(parsed) == 3
    assert all(isinstance(p, Rejected) for p in parsed)


def test_a_rejection_keeps_the_envelope_when_it_could_be_read() -> None:
    rejected = parse_one(
        event("Microsoft.MachineLearningServices.ModelRegistered", {}, subject="", id="evt-9")
    )

    assert isinstance(rejected, Rejected)
    assert rejected.envelope is not None and rejected.envelope.id == "evt-9"


def test_an_unknown_event_type_is_unknown_not_rejected() -> None:
    message = parse_one(event("Contoso.Something.Happened", {"anything": 1}))

    assert isinstance(message, UnknownEvent)
    assert message.envelope.event_type == "Contoso.Something.Happened"


def test_an_unknown_event_type_in_cloud_events_schema_is_unknown() -> None:
    message = parse_one({"specversion": "1.0", "id": "1", "source": "s", "type": "Contoso.X", "data": None})

    assert isinstance(message, UnknownEvent)


# --- Azure ML model monitor alerts (RunStatusChanged with the breach tag) ---------------------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "events"


def fixture(name: str) -> dict[str, Any]:
    [item] = json.loads((FIXTURES / f"{name}.eventgrid.json").read_text())
    return item


def with_data(item: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**item, "data": {**item["data"], **changes}}


def test_a_monitor_breach_is_a_monitor_alert_naming_its_signal_and_run() -> None:
    message = parse_one([fixture("model_monitor_breach")])

    assert isinstance(message, MonitorAlert)
    assert message.signal == "credit_monitor_data_drift"
    assert message.run_id == "credit_monitor-20260301-evaluate_thresholds"
    assert (message.experiment_name, message.status) == ("credit_monitor", "Completed")
    assert message.breach.startswith("The signal 'credit_monitor_data_drift' has failed due to")
    assert '"group":"INCOME"' in message.breach
    assert message.envelope.id == "f3b7c6a0-55d4-4a8e-9f41-2c0e7f3d9b10"


def test_microsofts_run_status_changed_sample_is_no_monitor_alert() -> None:
    message = parse_one([fixture("run_status_changed")])

    assert isinstance(message, RunCompleted)  # its runTags are empty; "failed" is terminal
    assert (message.status, message.experiment_name) == ("Failed", "automl-local-regression")


@pytest.mark.parametrize(
    ("tags_key", "tag_key"),
    [
        ("runTags", "azureml_modelmonitor_threshold_breached"),
        ("RunTags", "azureml_modelmonitor_threshold_breached"),
        ("RUNTAGS", "AzureML_ModelMonitor_Threshold_Breached"),
    ],
)
def test_the_breach_tag_is_found_whatever_the_case_of_its_keys(tags_key: str, tag_key: str) -> None:
    item = fixture("model_monitor_breach")
    text = item["data"].pop("runTags")["azureml_modelmonitor_threshold_breached"]
    item["data"][tags_key] = {tag_key: text}

    message = parse_one([item])

    assert isinstance(message, MonitorAlert) and message.signal == "credit_monitor_data_drift"


@pytest.mark.parametrize("status", ["Running", "Completed", "Failed", "finalizing", None])
def test_any_status_change_of_a_tagged_run_is_a_monitor_alert(status: Any) -> None:
    message = parse_one([with_data(fixture("model_monitor_breach"), runStatus=status)])

    assert isinstance(message, MonitorAlert)
    assert message.status == (status or "")


def test_a_breach_text_that_names_no_signal_is_still_an_alert() -> None:
    tags = {"azureml_modelmonitor_threshold_breached": "thresholds were violated"}
    message = parse_one([with_data(fixture("model_monitor_breach"), runTags=tags)])

    assert isinstance(message, MonitorAlert) and message.signal == ""


@pytest.mark.parametrize(
    "tags", [{}, {"azureml_modelmonitor_threshold_breached": None}, {"x": "y"}, "tags", []]
)
def test_a_status_change_without_the_tag_is_a_plain_status_change(tags: Any) -> None:
    message = parse_one([with_data(fixture("model_monitor_breach"), runTags=tags, runStatus="Running")])

    assert isinstance(message, RunStatusChanged)


def test_a_blank_tag_says_nothing() -> None:
    tags = {"azureml_modelmonitor_threshold_breached": "  "}
    message = parse_one([with_data(fixture("model_monitor_breach"), runTags=tags)])

    assert isinstance(message, RunCompleted)


def test_the_tag_on_a_run_completed_event_is_not_a_monitor_alert() -> None:
    item = {**fixture("model_monitor_breach"), "eventType": "Microsoft.MachineLearningServices.RunCompleted"}

    assert isinstance(parse_one([item]), RunCompleted)  # the monitor route takes RunStatusChanged only


JSON_VALUES = [None, True, False, 0, -1, 1.5, "", " ", "text", [], [1, "a"], {}, {"a": {"b": [None]}}]


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of a JSON object, nested ones included."""
    found = []
    for key, inner in value.items():
        found.append((*prefix, key))
        if isinstance(inner, dict):
            found += _paths(inner, (*prefix, key))
    return found


def _set(item: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(item))
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


MONITOR_EVENT = fixture("model_monitor_breach")


@pytest.mark.parametrize("path", _paths(MONITOR_EVENT), ids=".".join)
def test_any_json_value_in_any_field_of_a_monitor_event_parses_or_is_rejected(path: tuple[str, ...]) -> None:
    for value in JSON_VALUES:
        parsed = parse_one([_set(MONITOR_EVENT, path, value)])
        assert isinstance(parsed, MonitorAlert | RunStatusChanged | RunCompleted | UnknownEvent | Rejected)
        if isinstance(parsed, MonitorAlert):
            assert all(
                isinstance(text, str)
                for text in (
                    parsed.run_id,
                    parsed.signal,
                    parsed.breach,
                    parsed.status,
                    parsed.experiment_name,
                )
            )
            assert parsed.run_id and parsed.breach


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("runId", 42, "runId is the number 42, not text"),
        ("runId", ["r"], "runId is a list"),
        ("runStatus", {"s": 1}, "runStatus is an object"),
        ("experimentName", True, "experimentName is the boolean true"),
    ],
)
def test_a_monitor_alert_field_of_the_wrong_type_is_a_rejection(field: str, value: Any, reason: str) -> None:
    parsed = parse_one([with_data(MONITOR_EVENT, **{field: value})])

    assert isinstance(parsed, Rejected) and reason in parsed.reason
    assert parsed.envelope is not None and parsed.envelope.id == MONITOR_EVENT["id"]


@pytest.mark.parametrize(("value", "kind"), [(7, "the number 7"), (["x"], "a list"), ({"a": 1}, "an object")])
def test_a_breach_tag_that_is_not_text_is_a_rejection(value: Any, kind: str) -> None:
    tags = {"azureml_modelmonitor_threshold_breached": value}
    parsed = parse_one([with_data(MONITOR_EVENT, runTags=tags)])

    assert isinstance(parsed, Rejected)
    assert f"runTags.azureml_modelmonitor_threshold_breached is {kind}, not text" in parsed.reason


def test_a_monitor_alert_without_a_run_id_takes_it_from_the_subject() -> None:
    parsed = parse_one([with_data(MONITOR_EVENT, runId=None)])

    assert isinstance(parsed, MonitorAlert) and parsed.run_id == "credit_monitor-20260301-evaluate_thresholds"
    nowhere = {**with_data(MONITOR_EVENT, runId=""), "subject": ""}
    assert isinstance(parse_one([nowhere]), Rejected)


# --- what a trigger hands over -----------------------------------------------------------------------------------


def _from_trigger(**changes: Any) -> Any:
    fields: dict[str, Any] = {
        "id": MONITOR_EVENT["id"],
        "event_type": MONITOR_EVENT["eventType"],
        "topic": MONITOR_EVENT["topic"],
        "subject": MONITOR_EVENT["subject"],
        "data": MONITOR_EVENT["data"],
        "time": datetime(2026, 3, 1, tzinfo=UTC),
    }
    return from_trigger(**{**fields, **changes})


def test_what_a_trigger_hands_over_parses_like_the_body() -> None:
    assert _from_trigger() == replace(parse_one([MONITOR_EVENT]), envelope=_from_trigger().envelope)
    assert isinstance(_from_trigger(), MonitorAlert)


@pytest.mark.parametrize("field", ["id", "event_type", "topic", "subject", "data", "time"])
def test_any_json_value_in_any_field_a_trigger_hands_over_parses_or_is_rejected(field: str) -> None:
    for value in JSON_VALUES:
        parsed = _from_trigger(**{field: value})
        assert isinstance(parsed, MonitorAlert | RunStatusChanged | RunCompleted | UnknownEvent | Rejected), (
            value
        )
        if field in ("id", "event_type") and value in (None, ""):
            assert isinstance(parsed, Rejected) and "no id or type" in parsed.reason
        if (
            field in ("id", "event_type", "topic", "subject")
            and value is not None
            and not isinstance(value, str)
        ):
            assert isinstance(parsed, Rejected) and "not text" in parsed.reason
        if field == "data" and value is not None and not isinstance(value, dict | str):
            assert isinstance(parsed, Rejected) and "not an object" in parsed.reason


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, '{"a":' * 5_000 + "1" + "}" * 5_000])
def test_a_body_nested_too_deeply_is_rejected_not_raised(body: str) -> None:
    [rejected] = parse_body(body)
    assert isinstance(rejected, Rejected) and "nested too deeply" in rejected.reason
