"""The Event Grid trigger functions as the Functions worker invokes them (its own converter builds the
EventGridEvent or CloudEvent), over any JSON value in any field of any routed event: each invocation returns
normally, acknowledging the delivery, having acted on the event or recorded why not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import function_app
from functions._trigger import parse
from shared.domain.messages import ModelRegistered, Rejected
from shared.host.functions_host import FunctionHost, UndecodableEvent, decode_event
from tests.builders import actions
from tests.fakes import make_deps
from tests.hostile import KINDS, Serving, hostile_events, serving, single_field_changes

TRIGGERS = ["on_data_landed", "on_labels_landed", "on_run_completed", "on_model_registered"]
TRIGGERS += ["on_drift_detected", "on_monitor_alert", "on_data_deleted", "on_notify"]
SETTINGS = make_deps().settings


@pytest.fixture(scope="module", name="serving")
def serving_fixture() -> Iterator[Serving]:
    with serving() as served:
        yield served


@pytest.fixture(scope="module")
def host() -> FunctionHost:
    return FunctionHost(function_app.app, SETTINGS.raw)


def decoded(event: dict[str, Any]) -> Any:
    """What the worker hands the function, or None where the worker itself cannot read the event."""
    try:
        return decode_event(event)
    except UndecodableEvent:
        return None  # the local host refuses these itself (tests/unit/host/test_server_events.py)


def test_every_event_trigger_of_the_app_is_covered(host: FunctionHost) -> None:
    assert sorted(f.name for f in host.of_trigger("eventGridTrigger")) == sorted(TRIGGERS)


@settings(max_examples=150)
@given(hostile_events(SETTINGS), st.sampled_from(TRIGGERS))
def test_any_json_in_any_field_is_acted_on_or_a_recorded_rejection_never_a_failure(
    serving: Serving, host: FunctionHost, event: dict[str, Any], function: str
) -> None:
    argument = decoded(event)
    assume(argument is not None)
    parsed = parse(argument)
    # A registration of our model that the registry does not show yet fails on purpose, for Event Grid to retry
    # when the registry's replica has caught up (shared/handlers/release.py).
    assume(not (isinstance(parsed, ModelRegistered) and parsed.model_name == SETTINGS.model_name))
    serving.current = deps = make_deps()

    host.invoke_event(function, event)  # returns: the delivery is acknowledged

    [invocation] = host.invocations[-1:]
    assert invocation.outcome == "succeeded", invocation.error
    rejected = [entry for entry in actions(deps, "event.rejected") if entry.actor == function]
    assert len(rejected) <= 1
    if rejected:
        assert rejected[0].detail["reason"].strip()
    else:
        assert not hasattr(parsed, "reason"), "a rejection the function did not record"


ROUTED = {
    "microsoft.storage.blobcreated": ["on_data_landed", "on_labels_landed"],
    "microsoft.machinelearningservices.runcompleted": ["on_run_completed"],
    "microsoft.machinelearningservices.runstatuschanged": ["on_run_completed", "on_monitor_alert"],
    "microsoft.machinelearningservices.modelregistered": ["on_model_registered"],
    "mlops.driftdetected": ["on_drift_detected"],
}


def test_every_awkward_value_in_every_field_the_app_reads_is_handled_by_its_functions(
    serving: Serving, host: FunctionHost
) -> None:
    for event, path, value in single_field_changes(SETTINGS, KINDS, read_only=True):
        argument = decoded(event)
        if argument is None:
            continue
        parsed = parse(argument)
        if isinstance(parsed, Rejected):
            continue  # recorded by `admit` (tests/unit/domain/test_messages_properties.py)
        if isinstance(parsed, ModelRegistered) and parsed.model_name == SETTINGS.model_name:
            continue  # fails on purpose until the registry shows the version (see above)
        kind = str(event.get("eventType", event.get("type"))).lower()
        for function in ROUTED.get(kind, ["on_data_landed"]):
            serving.current = make_deps()
            try:
                host.invoke_event(function, event)
            except Exception as error:
                raise AssertionError(f"{function}: {'.'.join(path)} = {value!r} in {kind}") from error
