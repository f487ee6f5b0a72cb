"""The door every event passes: only well-formed events of the right type from the configured topic get in."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.domain.messages import (
    BLOB_CREATED,
    BLOB_DELETED,
    DRIFT_DETECTED,
    MODEL_REGISTERED,
    MONITOR_BREACH_TAG,
    RUN_COMPLETED,
    RUN_STATUS_CHANGED,
    BlobCreated,
    BlobDeleted,
    DriftDetected,
    ModelRegistered,
    MonitorAlert,
    Parsed,
    RunCompleted,
    RunStatusChanged,
    envelope_of,
    parse_body,
    typed,
)
from shared.handlers.intake import admit
from tests.builders import actions
from tests.fakes import CUSTOM_TOPIC, STORAGE_TOPIC, WORKSPACE_TOPIC, FakeDeps, make_deps
from tests.hostile import samples

LANDING_SUBJECT = "/blobServices/default/containers/landing/blobs/data.csv"
BREACH = {
    "runId": "mon-1",
    "runStatus": "Completed",
    "runTags": {MONITOR_BREACH_TAG: "The signal 'm_data_drift' has failed due to one or more features ..."},
}


def message(
    event_type: str, topic: str, data: dict[str, Any], subject: str = "", event_id: str = "evt-1"
) -> Parsed:
    envelope = envelope_of(
        id=event_id,
        event_type=event_type,
        topic=topic,
        subject=subject,
        data=data,
        time=datetime(2024, 5, 6, tzinfo=UTC),
    )
    return typed(envelope)


def rejections(deps: FakeDeps) -> list[tuple[str, str, str]]:
    return [
        (e.actor, e.subject, e.detail["reason"]) for e in deps.audit.entries() if e.action == "event.rejected"
    ]


@pytest.fixture()
def deps() -> FakeDeps:
    return make_deps()


@pytest.mark.parametrize(
    ("parsed", "expected"),
    [
        (message(BLOB_CREATED, STORAGE_TOPIC, {}, LANDING_SUBJECT), (BlobCreated,)),
        (message(BLOB_DELETED, STORAGE_TOPIC, {"api": "DeleteBlob"}, LANDING_SUBJECT), (BlobDeleted,)),
        (message(RUN_COMPLETED, WORKSPACE_TOPIC, {"runId": "r1"}), (RunCompleted, RunStatusChanged)),
        (
            message(MODEL_REGISTERED, WORKSPACE_TOPIC, {"modelName": "m", "modelVersion": 1}),
            (ModelRegistered,),
        ),
        (message(DRIFT_DETECTED, CUSTOM_TOPIC, {"driftShare": 0.7}), (DriftDetected,)),
        (message(RUN_STATUS_CHANGED, WORKSPACE_TOPIC, BREACH), (MonitorAlert,)),
    ],
)
def test_events_from_their_configured_topic_are_admitted(
    deps: FakeDeps, parsed: Parsed, expected: tuple[type, ...]
) -> None:
    assert admit(parsed, expected, deps, "fn") is parsed
    assert rejections(deps) == []


def test_topic_comparison_ignores_case(deps: FakeDeps) -> None:
    parsed = message(BLOB_CREATED, STORAGE_TOPIC.upper(), {}, LANDING_SUBJECT)

    assert admit(parsed, (BlobCreated,), deps, "on_data_landed") is parsed


@pytest.mark.parametrize(
    ("parsed", "expected"),
    [
        (
            message(BLOB_CREATED, STORAGE_TOPIC.replace("/unit", "/other"), {}, LANDING_SUBJECT),
            (BlobCreated,),
        ),
        (message(BLOB_CREATED, WORKSPACE_TOPIC, {}, LANDING_SUBJECT), (BlobCreated,)),
        (message(BLOB_CREATED, "", {}, LANDING_SUBJECT), (BlobCreated,)),
        (message(RUN_COMPLETED, STORAGE_TOPIC, {"runId": "r1"}), (RunCompleted,)),
        # an MLOps.* event must come from our custom topic, not from the workspace
        (message(DRIFT_DETECTED, WORKSPACE_TOPIC, {"driftShare": 0.7}), (DriftDetected,)),
        # a monitor's alert comes from the workspace, never from our custom topic
        (message(RUN_STATUS_CHANGED, CUSTOM_TOPIC, BREACH), (MonitorAlert,)),
    ],
)
def test_events_from_a_foreign_topic_are_rejected_and_audited(
    deps: FakeDeps, parsed: Parsed, expected: tuple[type, ...]
) -> None:
    assert admit(parsed, expected, deps, "fn") is None

    [(actor, subject, reason)] = rejections(deps)
    assert (actor, subject) == ("fn", "evt-1")
    assert "is not the configured" in reason
    assert deps.audit.verify() == []


def test_a_malformed_event_is_rejected_with_the_parsers_reason(deps: FakeDeps) -> None:
    [parsed] = parse_body(b"{broken")

    assert admit(parsed, (BlobCreated,), deps, "on_data_landed") is None

    [(actor, subject, reason)] = rejections(deps)
    assert (actor, subject) == ("on_data_landed", "(no id)")
    assert "not JSON" in reason


def test_a_malformed_event_with_an_id_is_audited_under_that_id(deps: FakeDeps) -> None:
    parsed = message(MODEL_REGISTERED, WORKSPACE_TOPIC, {"modelVersion": 1}, subject="", event_id="evt-42")

    assert admit(parsed, (ModelRegistered,), deps, "on_model_registered") is None

    [(_, subject, reason)] = rejections(deps)
    assert subject == "evt-42"
    assert "modelName" in reason


def test_an_event_type_the_function_does_not_handle_is_rejected(deps: FakeDeps) -> None:
    parsed = message(RUN_COMPLETED, WORKSPACE_TOPIC, {"runId": "r1"})

    assert admit(parsed, (BlobCreated,), deps, "on_data_landed") is None

    [(_, _, reason)] = rejections(deps)
    assert reason == f"event type {RUN_COMPLETED} is not handled by on_data_landed"


def test_an_unknown_event_type_is_rejected(deps: FakeDeps) -> None:
    parsed = message("Contoso.Thing.Happened", STORAGE_TOPIC, {})

    assert admit(parsed, (BlobCreated,), deps, "on_data_landed") is None

    [(_, _, reason)] = rejections(deps)
    assert "Contoso.Thing.Happened is not handled" in reason


def test_every_rejection_is_one_audit_entry_and_the_chain_holds(deps: FakeDeps) -> None:
    for parsed in parse_body(b'[1, {"id": "a"}, {"id": "b", "eventType": "X.Y", "eventTime": "never"}]'):
        admit(parsed, (BlobCreated,), deps, "on_data_landed")

    assert len(rejections(deps)) == 3
    assert deps.audit.verify() == []


def test_the_retired_v1_dataset_drift_event_is_no_longer_understood(deps: FakeDeps) -> None:
    parsed = message(
        "Microsoft.MachineLearningServices.DatasetDriftDetected", WORKSPACE_TOPIC, {"driftCoefficient": 0.7}
    )

    assert admit(parsed, (DriftDetected,), deps, "on_drift_detected") is None

    [(_, _, reason)] = rejections(deps)
    assert reason.endswith("DatasetDriftDetected is not handled by on_drift_detected")


def test_a_rejection_quoting_a_huge_field_keeps_a_readable_reason() -> None:
    deps = make_deps()
    event = samples(deps.settings)[0]  # a landed file
    huge = {**event, "subject": "s" * 100_000, "data": {**event["data"], "url": "u" * 100_000}}
    [parsed] = parse_body(json.dumps(huge))

    assert admit(parsed, (BlobCreated,), deps, "on_data_landed") is None

    [entry] = actions(deps, "event.rejected")
    assert entry.detail["reason"].startswith("Microsoft.Storage.BlobCreated data is malformed: cannot find")
    assert len(entry.detail["reason"]) == 1000
