"""Properties of the parser and of the door (`admit`), over any JSON value in any field of any routed event:
every event is a well-typed message or a rejection with a reason, and every rejection is recorded."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.messages import (
    Announcement,
    BlobCreated,
    BlobDeleted,
    DriftDetected,
    Envelope,
    ModelDeployed,
    ModelRegistered,
    MonitorAlert,
    Rejected,
    RunCompleted,
    RunStatusChanged,
    UnknownEvent,
    from_trigger,
    parse_body,
    parse_event,
)
from shared.handlers.intake import admit
from tests.builders import actions
from tests.fakes import make_deps
from tests.hostile import hostile_bodies, hostile_events, json_values, samples, single_field_changes

DEPS = make_deps()
MESSAGES = (
    BlobCreated,
    BlobDeleted,
    RunCompleted,
    RunStatusChanged,
    MonitorAlert,
    ModelRegistered,
    ModelDeployed,
    DriftDetected,
    Announcement,
)
ROUTES: list[tuple[str, tuple[type, ...]]] = [
    ("on_data_landed", (BlobCreated,)),
    ("on_labels_landed", (BlobCreated,)),
    ("on_data_deleted", (BlobDeleted,)),
    ("on_run_completed", (RunCompleted, RunStatusChanged, MonitorAlert)),
    ("on_model_registered", (ModelRegistered,)),
    ("on_drift_detected", (DriftDetected,)),
    ("on_monitor_alert", (MonitorAlert,)),
    ("on_notify", (Announcement, DriftDetected)),
]


def assert_well_typed(parsed: Any) -> None:
    """A message holds what its fields say; a rejection says why in a sentence."""
    assert isinstance(parsed, (*MESSAGES, Rejected, UnknownEvent)), type(parsed)
    if isinstance(parsed, Rejected):
        assert isinstance(parsed.reason, str) and parsed.reason.strip()
        assert parsed.envelope is None or isinstance(parsed.envelope.id, str)
        return
    envelope = parsed.envelope
    assert isinstance(envelope, Envelope)
    assert all(isinstance(getattr(envelope, n), str) for n in ("id", "event_type", "topic", "subject"))
    assert envelope.id and envelope.event_type
    assert isinstance(envelope.time, datetime) and envelope.time.tzinfo is not None
    assert isinstance(envelope.data, dict)
    for spec in fields(parsed):
        value = getattr(parsed, spec.name)
        if spec.type == "str":
            assert isinstance(value, str), (spec.name, value)
        elif spec.type == "int":
            assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, (spec.name, value)
        elif spec.type == "dict[str, Any]":
            assert isinstance(value, dict), (spec.name, value)
        elif spec.type == "tuple[str, ...]":
            assert isinstance(value, tuple) and all(isinstance(v, str) for v in value), (spec.name, value)
        elif spec.type == "float | None":
            assert value is None or (isinstance(value, float) and math.isfinite(value)), (spec.name, value)


@settings(max_examples=250)
@given(hostile_events(DEPS.settings))
def test_any_json_in_any_field_of_any_event_parses_to_a_typed_message_or_a_rejection(event: dict) -> None:
    [parsed] = parse_body(json.dumps(event))

    assert_well_typed(parsed)
    assert_well_typed(parse_event(event))


def test_every_awkward_value_in_every_field_of_every_event_parses_or_is_rejected() -> None:
    changes = single_field_changes(DEPS.settings)
    assert len(changes) > 2000
    for event, path, value in changes:
        try:
            parsed = parse_event(event)
            assert_well_typed(parsed)
        except Exception as error:
            raise AssertionError(
                f"{'.'.join(path)} = {value!r} in {event.get('eventType', event.get('type'))}"
            ) from error


@settings(max_examples=200)
@given(hostile_bodies(DEPS.settings))
def test_any_json_document_as_a_body_gives_one_answer_per_event(body: Any) -> None:
    parsed = parse_body(json.dumps(body).encode())

    assert len(parsed) == (len(body) if isinstance(body, list) else 1)
    for each in parsed:
        assert_well_typed(each)


@settings(max_examples=200)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_as_a_body_are_parsed_or_rejected(body: bytes) -> None:
    for each in parse_body(body):
        assert_well_typed(each)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"id": 1' + "0" * 5000 + "}", "not JSON"),  # past Python's limit on the digits of an integer
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_a_body_python_will_not_read_is_rejected_not_raised(body: str | bytes, says: str) -> None:
    [rejected] = parse_body(body)
    assert isinstance(rejected, Rejected) and says in rejected.reason


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("contentLength", float("inf"), "contentLength is a number out of range, not a count"),
        ("contentLength", True, "contentLength is the boolean true, not a count"),
        ("contentLength", -3, "contentLength is the number -3, not a count"),
        ("contentLength", "12", "contentLength is a string, not a count"),
        ("url", ["x"], "url is a list, not text"),
        ("eTag", 7, "eTag is the number 7, not text"),
    ],
)
def test_a_blob_created_field_of_the_wrong_type_is_a_rejection_naming_it(
    field: str, value: Any, says: str
) -> None:
    event = samples(DEPS.settings)[0]
    [parsed] = parse_body(json.dumps({**event, "data": {**event["data"], field: value}}))

    assert isinstance(parsed, Rejected) and says in parsed.reason
    assert parsed.envelope is not None and parsed.envelope.id == event["id"]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"driftShare": 1.5}, "driftShare is the number 1.5, not a share between 0 and 1"),
        ({"driftShare": True}, "driftShare is the boolean true"),
        ({"driftedColumns": "x1"}, "driftedColumns is a string, not a list of texts"),
        ({"driftedColumns": [1]}, "driftedColumns is a list, not a list of texts"),
        ({"modelVersion": [1]}, "the version is a list"),
    ],
)
def test_a_drift_event_field_of_the_wrong_type_is_a_rejection_naming_it(changes: dict, says: str) -> None:
    event = next(e for e in samples(DEPS.settings) if e["eventType"] == "MLOps.DriftDetected")
    [parsed] = parse_body(json.dumps({**event, "data": {**event["data"], **changes}}))

    assert isinstance(parsed, Rejected) and says in parsed.reason


@pytest.mark.parametrize(
    ("field", "value"), [("id", 5), ("eventType", ["x"]), ("subject", {}), ("topic", 1.5), ("eventTime", 0)]
)
def test_an_envelope_field_that_is_not_text_is_a_rejection(field: str, value: Any) -> None:
    [parsed] = parse_body(json.dumps({**samples(DEPS.settings)[0], field: value}))

    assert isinstance(parsed, Rejected) and "not text" in parsed.reason


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {"id": json_values, "event_type": json_values, "topic": json_values, "subject": json_values},
    ),
    json_values | json_values.map(json.dumps) | st.binary(max_size=40),
    st.sampled_from(samples(DEPS.settings)),
)
def test_any_value_in_any_field_a_trigger_hands_over_is_a_message_or_a_rejection(
    envelope: dict, data: Any, base: dict
) -> None:
    real = {
        "id": base["id"],
        "event_type": base["eventType"],
        "topic": base["topic"],
        "subject": base["subject"],
    }
    for fields_given in ({**real, "data": data}, {**envelope, "data": base["data"]}):
        assert_well_typed(from_trigger(**fields_given))


@settings(max_examples=200)
@given(hostile_events(DEPS.settings), st.sampled_from(ROUTES))
def test_admit_acts_on_what_its_function_handles_and_records_why_not_for_anything_else(
    event: dict, route: tuple[str, tuple[type, ...]]
) -> None:
    actor, expected = route
    deps = make_deps()
    [parsed] = parse_body(json.dumps(event))

    message = admit(parsed, expected, deps, actor)

    rejected = actions(deps, "event.rejected")
    if message is None:
        [entry] = rejected
        assert entry.actor == actor and entry.detail["reason"].strip()
        assert entry.subject == (parsed.envelope.id if parsed.envelope else "(no id)")
    else:
        assert rejected == [] and message is parsed and isinstance(message, expected)
        assert_well_typed(message)
