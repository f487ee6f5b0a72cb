"""Asking for training on fakes: once per event, never again for a file or a retrain a run has taken in."""

from __future__ import annotations

from dataclasses import replace

from shared.domain.messages import RequestTraining
from shared.handlers.reconcile import resume_files
from shared.handlers.training import on_run_completed
from shared.handlers.training_requests import request_training, retrain
from shared.state import keys
from shared.state.records import FileStatus
from shared.state.store import Lease
from tests.builders import (
    actions,
    evaluation,
    good_csv,
    land,
    request_events,
    request_state,
    run_completed,
    run_state,
    start_after_quiet_period,
)
from tests.fakes import FakeDeps, make_deps


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


def test_a_file_that_a_run_took_in_asks_for_nothing_when_its_handling_is_resumed() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv(), event_id="evt-1")
    start_after_quiet_period(deps)
    # The handler crashed before its last write (the run took the file in meanwhile): reconcile resumes it.
    [stored] = list(deps.state.list(keys.FILES))
    crashed = Lease("crashed-worker", deps.clock().isoformat())  # expired now
    deps.state.replace(
        replace(stored, record=replace(stored.record, status=FileStatus.ACCEPTING), lease=crashed)
    )

    resume_files(deps)

    assert request_state(deps) is None
    assert deps.state.get(stored.key).record.status is FileStatus.ACCEPTED
    assert len(actions(deps, "file.accepted")) == 1


def test_a_cause_consumed_between_its_write_and_its_check_is_covered_by_the_run() -> None:
    deps = make_deps()
    # a run consumes the cause right after it is written, before the handler checks it is there
    deps.blobs.before_once("info", lambda: deps.state.delete(keys.training_cause("evt-late")))

    assert not request_training(RequestTraining("drift", "evt-late"), deps, "on_drift_detected")
    assert actions(deps, "training.requested") == []


# --- a request to retrain: by hand, or for new code ---------------------------------------------------------


def ask(deps: FakeDeps, event_id: str, code_version: str | None = None) -> dict:
    cause = "code" if code_version else "manual"
    detail = {"reason": "because", "code_version": code_version, "requested_by": "alice"}
    return retrain(RequestTraining(cause, event_id, detail), deps, "retrain")


def test_a_retrain_is_started_by_reconcile_as_any_other_cause() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv(), event_id="evt-1")
    answer = ask(deps, "retrain:a")
    assert answer == {"id": "retrain:a", "cause": "manual", "request": request_state(deps)["id"], "run": None}

    run_id = start_after_quiet_period(deps)
    assert run_id is not None
    run = run_state(deps, run_id)
    assert run["request"]["causes"] == ["data", "manual"] and run["request"]["events"] == [
        "evt-1",
        "retrain:a",
    ]
    assert list(deps.jobs.submitted) == [run_id]
    [requested] = [e for e in actions(deps, "training.requested") if e.subject == "retrain:a"]
    assert requested.actor == "retrain"
    assert requested.detail == {
        "cause": "manual",
        "event_id": "retrain:a",
        "reason": "because",
        "code_version": None,
        "requested_by": "alice",
    }

    # new code with new data: a follow-up run, its causes code and data
    deps.jobs.complete(run_id, evaluation())
    on_run_completed(run_completed(deps, run_id), deps)
    land(deps, "batch-2.csv", good_csv(offset=20), event_id="evt-2")
    assert ask(deps, "retrain:b", code_version="0123abc")["cause"] == "code"
    follow_up = start_after_quiet_period(deps)
    assert follow_up not in (None, run_id)
    assert run_state(deps, follow_up)["request"]["causes"] == ["code", "data"]


def test_a_retrain_without_accepted_data_waits_for_data() -> None:
    deps = make_deps()
    ask(deps, "retrain:a")
    assert start_after_quiet_period(deps) is None
    [waiting] = actions(deps, "training.waiting")
    assert waiting.detail["reason"] == "no accepted data yet" and waiting.detail["causes"] == ["manual"]
    assert request_events(deps) == ["retrain:a"]


def test_the_same_retrain_asks_once_even_after_a_run_took_it_in() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv(), event_id="evt-1")
    first = ask(deps, "retrain:same")
    assert ask(deps, "retrain:same") == first  # retried while open: the same request, asked once
    run_id = start_after_quiet_period(deps)

    again = ask(deps, "retrain:same")  # retried after the run consumed it

    assert again == {"id": "retrain:same", "cause": "manual", "request": None, "run": run_id}
    assert request_state(deps) is None
    assert [e.subject for e in actions(deps, "training.requested")] == ["retrain:same"]
    assert ask(deps, "retrain:other")["request"] is not None  # another request asks anew
