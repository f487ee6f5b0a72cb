"""Asking for training on fakes: once per event, never again for a file a run has taken in."""

from __future__ import annotations

from shared.domain.messages import RequestTraining
from shared.handlers.training_requests import request_training
from shared.state import keys
from tests.builders import actions, good_csv, land, request_state, start_after_quiet_period
from tests.fakes import make_deps


def test_each_cause_opens_once_and_coalesces_into_one_request() -> None:
    deps = make_deps()

    assert request_training(RequestTraining("schedule", "tick-1"), deps, "scheduled_retrain")
    assert request_training(RequestTraining("schedule", "tick-1"), deps, "scheduled_retrain")  # redelivered
    deps.clock.advance(1)
    assert request_training(RequestTraining("drift", "evt-drift", {"report": "r"}), deps, "on_drift_detected")

    request = request_state(deps)
    assert request["events"] == ["tick-1", "evt-drift"] and request["causes"] == ["drift", "schedule"]
    assert [e.subject for e in actions(deps, "training.requested")] == ["tick-1", "evt-drift"]
    assert request["details"][1]["detail"] == {"report": "r"}


def test_a_file_that_a_run_took_in_asks_for_nothing_when_redelivered() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv(), event_id="evt-1")
    start_after_quiet_period(deps)
    [accepted] = actions(deps, "file.accepted")
    command = RequestTraining("data", "evt-1", {"file": "batch-1.csv", "sha256": accepted.detail["sha256"]})

    assert not request_training(command, deps, "on_data_landed")
    assert request_state(deps) is None
    assert len(actions(deps, "training.requested")) == 1  # the first delivery's, not a second


def test_a_cause_consumed_between_its_write_and_its_check_is_covered_by_the_run() -> None:
    deps = make_deps()
    # a run consumes the cause right after it is written, before the handler checks it is there
    deps.blobs.before_once("info", lambda: deps.state.delete(keys.training_cause("evt-late")))

    assert not request_training(RequestTraining("drift", "evt-late"), deps, "on_drift_detected")
    assert actions(deps, "training.requested") == []
