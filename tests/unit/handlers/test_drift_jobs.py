"""The drift check's life as a job: the timer submits it, its completion event (or the reconcile tick, when
the event never came) records the outcome once, and a failed, lost or overdue job is recorded with its reason
and makes room for the next check. Assertions are on the audit log, the events published and the jobs."""

from __future__ import annotations

import pytest

from shared.handlers import reconcile as reconciliation
from shared.handlers.drift_check import RECORD_GRACE, SUBMIT_GRACE, check_drift, finish_drift_check
from shared.handlers.training import on_run_completed
from shared.ports import RunResults
from tests.builders import actions, production_with_drift, put_production, run_completed
from tests.fakes import make_deps

MODEL = "mlops-model"


def test_the_timer_submits_a_job_and_its_completion_event_records_and_publishes_the_drift() -> None:
    deps = make_deps()
    production_with_drift(deps)

    submitted = check_drift(deps)

    assert submitted is not None and list(deps.drift_jobs.submitted) == [submitted.check_id]
    job = deps.drift_jobs.submitted[submitted.check_id]
    assert (job.model.id, job.deployment) == (f"{MODEL}:1", f"{MODEL}-v1")
    assert actions(deps, "drift.submitted")[0].detail["check"] == submitted.check_id
    assert actions(deps, "drift.checked") == [] and deps.publisher.events == []  # nothing before the job ends

    deps.drift_jobs.run(submitted.check_id, deps.blobs, deps.settings, deps.clock())
    on_run_completed(run_completed(deps, submitted.check_id), deps)
    on_run_completed(run_completed(deps, submitted.check_id, event_id="redelivered"), deps)

    [checked] = actions(deps, "drift.checked")
    assert checked.detail["drifted"] is True and checked.detail["drifted_columns"] == ["x"]
    [event] = deps.publisher.events
    assert event.event_type == "MLOps.DriftDetected" and event.data["driftedColumns"] == ["x"]
    assert len(actions(deps, "drift.published")) == 1


def test_drift_of_a_champion_replaced_while_the_check_ran_is_recorded_not_published() -> None:
    deps = make_deps()
    production_with_drift(deps)
    submitted = check_drift(deps)
    newer = deps.registry.register(
        MODEL, RunResults("run-2", {}, "memory://m2"), {"mlops.dataset_version": "ds-2"}
    )
    put_production(deps, newer, f"{MODEL}-v2")

    deps.drift_jobs.run(submitted.check_id, deps.blobs, deps.settings, deps.clock())
    on_run_completed(run_completed(deps, submitted.check_id), deps)

    assert actions(deps, "drift.checked")[0].detail["drifted"] is True
    [held] = actions(deps, "drift.not_published")
    assert held.detail["reason"] == f"{MODEL}:1 is no longer in production ({MODEL}:2 is)"
    assert deps.publisher.events == []


def test_a_champion_without_known_training_data_is_not_checked() -> None:
    deps = make_deps()
    foreign = deps.registry.register(MODEL, RunResults("run-by-hand", {}, "memory://m"), {})
    put_production(deps, foreign, f"{MODEL}-v1")

    assert check_drift(deps) is None

    [skipped] = actions(deps, "drift.skipped")
    assert skipped.subject == f"{MODEL}:1"
    assert "no mlops.dataset_version tag" in skipped.detail["reason"]
    assert deps.drift_jobs.submitted == {}


def test_a_running_check_is_not_submitted_twice() -> None:
    deps = make_deps()
    production_with_drift(deps)
    first = check_drift(deps)
    deps.drift_jobs.statuses[first.check_id] = "Running"

    assert check_drift(deps) is None

    assert list(deps.drift_jobs.submitted) == [first.check_id]
    assert actions(deps, "drift.skipped")[0].detail["reason"] == "the previous check is still running"


def test_a_lost_completion_event_is_made_good_by_the_reconcile_tick() -> None:
    deps = make_deps()
    production_with_drift(deps)
    submitted = check_drift(deps)
    deps.drift_jobs.run(submitted.check_id, deps.blobs, deps.settings, deps.clock())

    reconciliation.reconcile(deps)

    assert actions(deps, "drift.checked")[0].detail["check"] == submitted.check_id
    assert [e.event_type for e in deps.publisher.events] == ["MLOps.DriftDetected"]
    reconciliation.reconcile(deps)
    assert len(deps.publisher.events) == 1


def test_a_failed_job_is_recorded_with_its_reason_and_the_next_timer_checks_again() -> None:
    deps = make_deps()
    production_with_drift(deps)
    first = check_drift(deps)
    deps.drift_jobs.fail(first.check_id, failure={"reason": "ValueError: the champion's data is gone"})

    on_run_completed(run_completed(deps, first.check_id, status="failed"), deps)

    [failed] = actions(deps, "drift.failed")
    assert failed.detail["reason"] == "ValueError: the champion's data is gone"
    assert deps.publisher.events == []
    second = check_drift(deps)
    assert second is not None and second.check_id != first.check_id


def test_a_job_past_its_deadline_is_cancelled_and_replaced_and_its_late_end_recorded() -> None:
    deps = make_deps(MLOPS_DRIFT_JOB_TIMEOUT_SECONDS="600")
    production_with_drift(deps)
    first = check_drift(deps)
    deps.drift_jobs.statuses[first.check_id] = "Running"
    deps.clock.advance(601)

    second = check_drift(deps)

    assert second is not None and second.check_id != first.check_id
    assert deps.drift_jobs.cancelled == [first.check_id]
    [failed] = actions(deps, "drift.failed")
    assert "still Running after 600 s" in failed.detail["reason"] and failed.detail["cancel"] == "cancelled"
    # the overdue job had finished its work after all: what it found is recorded, and acted on no further
    deps.drift_jobs.run(first.check_id, deps.blobs, deps.settings, deps.clock())
    finish_drift_check(deps, first.check_id, "Completed", "late")
    finish_drift_check(deps, first.check_id, "Completed", "late-redelivered")
    [late] = actions(deps, "drift.late")
    assert (late.detail["check"], late.detail["drifted"], late.detail["reasons"]) == (
        first.check_id,
        True,
        ["data"],
    )
    assert "still Running" in late.detail["closed_because"]
    assert actions(deps, "drift.checked") == [] and deps.publisher.events == []
    assert [e.detail["reason"] for e in actions(deps, "event.ignored")] == ["not the drift check in flight"]


def test_a_cancel_that_fails_still_frees_the_next_check() -> None:
    deps = make_deps(MLOPS_DRIFT_JOB_TIMEOUT_SECONDS="600")
    production_with_drift(deps)
    first = check_drift(deps)
    deps.drift_jobs.statuses[first.check_id] = "Running"
    deps.drift_jobs.fail_once("cancel", ConnectionError("workspace unavailable"))
    deps.clock.advance(601)

    reconciliation.reconcile(deps)

    [failed] = actions(deps, "drift.failed")
    assert failed.detail["cancel"] == "the cancel failed: ConnectionError: workspace unavailable"
    deps.drift_jobs.fail(first.check_id, "Canceled")  # stopped by hand, later
    finish_drift_check(deps, first.check_id, "Canceled", "evt-canceled")
    assert actions(deps, "drift.late")[0].detail["reason"] == "the job ended Canceled"
    assert check_drift(deps) is not None


def test_a_submit_that_fails_leaves_the_check_for_the_tick_to_submit_again() -> None:
    deps = make_deps()
    production_with_drift(deps)
    deps.drift_jobs.fail_once("submit", ConnectionError("workspace unavailable"))

    check = check_drift(deps)

    assert check is not None and deps.drift_jobs.submitted == {}
    assert "workspace unavailable" in actions(deps, "drift.submit_failed")[0].detail["reason"]
    reconciliation.reconcile(deps)
    assert deps.drift_jobs.submitted == {}  # within the grace a submit may still be under way
    deps.clock.advance(SUBMIT_GRACE.total_seconds() + 1)
    reconciliation.reconcile(deps)
    assert list(deps.drift_jobs.submitted) == [check.check_id]
    [submitted] = actions(deps, "drift.submitted")
    assert submitted.actor == "reconcile"
    deps.drift_jobs.run(check.check_id, deps.blobs, deps.settings, deps.clock())
    reconciliation.reconcile(deps)
    assert actions(deps, "drift.checked")[0].detail["check"] == check.check_id


def test_a_submit_whose_answer_was_lost_makes_one_job() -> None:
    deps = make_deps()
    production_with_drift(deps)
    deps.drift_jobs.after_once("submit", TimeoutError("the answer never came"))

    check = check_drift(deps)
    deps.clock.advance(SUBMIT_GRACE.total_seconds() + 1)
    reconciliation.reconcile(deps)

    assert list(deps.drift_jobs.submitted) == [check.check_id]
    assert actions(deps, "drift.submitted") == []  # the job is Queued: nothing to submit again
    assert len(actions(deps, "drift.submit_failed")) == 1


def test_a_check_the_backend_never_learnt_of_fails_at_its_deadline() -> None:
    deps = make_deps(MLOPS_DRIFT_JOB_TIMEOUT_SECONDS="1800")
    production_with_drift(deps)
    for _ in range(3):
        deps.drift_jobs.fail_once("submit", ConnectionError("workspace unavailable"))
    check = check_drift(deps)

    for _ in range(2):
        deps.clock.advance(SUBMIT_GRACE.total_seconds() + 1)
        reconciliation.reconcile(deps)

    assert deps.drift_jobs.submitted == {} and actions(deps, "drift.failed") == []
    deps.clock.advance(1800)
    reconciliation.reconcile(deps)
    [failed] = actions(deps, "drift.failed")
    assert failed.detail["reason"] == "the backend had no such job after 1800 s"
    assert deps.drift_jobs.cancelled == [] and check_drift(deps).check_id != check.check_id


def test_an_outcome_that_cannot_be_recorded_is_tried_again_then_closed_past_the_deadline() -> None:
    deps = make_deps(MLOPS_DRIFT_JOB_TIMEOUT_SECONDS="600")
    production_with_drift(deps)
    check = check_drift(deps)
    deps.drift_jobs.run(check.check_id, deps.blobs, deps.settings, deps.clock())
    for _ in range(3):
        deps.publisher.fail_once("publish", ConnectionError("topic refused"))

    with pytest.raises(RuntimeError, match="topic refused"):
        reconciliation.reconcile(deps)
    with pytest.raises(ConnectionError):  # the timer too: the check stays in flight, its outcome tried again
        check_drift(deps)
    assert deps.drift_jobs.submitted.keys() == {check.check_id}
    deps.clock.advance(600 + RECORD_GRACE.total_seconds() + 1)
    reconciliation.reconcile(deps)  # refused once more: now closed, with the reason

    [failed] = actions(deps, "drift.failed")
    assert "its outcome could not be recorded" in failed.detail["reason"]
    assert "topic refused" in failed.detail["reason"]
    assert check_drift(deps) is not None


@pytest.mark.parametrize("outcome", [None, [], {"outcome": "checked"}, {"outcome": 7}, "text"])
def test_an_outcome_that_is_not_a_drift_checks_is_a_recorded_failure(outcome: object) -> None:
    deps = make_deps()
    production_with_drift(deps)
    submitted = check_drift(deps)
    deps.drift_jobs.finished(submitted.check_id, outcome)  # what a broken job could leave behind

    assert finish_drift_check(deps, submitted.check_id, "Completed", "evt") is None

    assert "outcome" in actions(deps, "drift.failed")[0].detail["reason"]
    assert deps.publisher.events == []
