"""A failed run is tried again after a back-off, as the next attempt of its key, until its request has had
MLOPS_RUN_MAX_ATTEMPTS tries; then it has failed for good, saying why, and only a new trigger tries again.
A start whose submit keeps failing times out instead of being tried on every tick for ever."""

from __future__ import annotations

from datetime import datetime

from shared.handlers import reconcile as reconciliation
from shared.handlers.drift import on_drift_detected
from shared.handlers.training import on_run_completed, start_training_if_due
from shared.ports import TrainingJob
from tests.builders import (
    actions,
    drift_detected,
    evaluation,
    good_csv,
    land,
    run_completed,
    run_state,
    start_after_quiet_period,
)
from tests.fakes import FakeDeps, make_deps

BACKOFF = 300.0


def _deps(**settings: str) -> FakeDeps:
    return make_deps(MLOPS_RUN_RETRY_BACKOFF_SECONDS=str(int(BACKOFF)), **settings)


def _fail(deps: FakeDeps, run_id: str) -> None:
    deps.jobs.fail(run_id, failure={"stage": "command", "reason": "exited with 1"})
    on_run_completed(run_completed(deps, run_id, status="failed", event_id=f"evt-failed-{run_id}"), deps)


def test_a_failed_run_is_tried_again_after_the_back_off_as_the_next_attempt() -> None:
    deps = _deps()
    land(deps, "batch-1.csv", good_csv(), event_id="evt-file")
    first = start_after_quiet_period(deps)
    _fail(deps, first)

    [scheduled] = actions(deps, "run.retry_scheduled")
    assert (scheduled.detail["attempt"], scheduled.detail["backoff_seconds"]) == (1, BACKOFF)
    deps.clock.advance(BACKOFF - 1)
    assert start_training_if_due(deps) is None  # still backing off
    deps.clock.advance(1)

    second = start_training_if_due(deps)

    assert second == f"{first}-2"
    retry = run_state(deps, second)
    assert (retry["status"], retry["attempt"]) == ("running", 2)
    assert retry["request"] == run_state(deps, first)["request"]  # it answers the same request
    assert retry["dataset_version"] == run_state(deps, first)["dataset_version"]
    assert run_state(deps, first)["retry_at"] is None
    assert deps.jobs.submitted[second].manifest == deps.jobs.submitted[first].manifest
    started = [e for e in actions(deps, "training.started") if e.subject == second]
    assert [(e.detail["attempt"], e.detail["retry_of"]) for e in started] == [(2, first)]
    assert start_training_if_due(deps) is None  # tried once, not once per tick


def test_after_the_last_try_the_run_has_failed_for_good_and_a_new_trigger_starts_a_new_attempt() -> None:
    deps = _deps(MLOPS_RUN_MAX_ATTEMPTS="2")
    land(deps, "batch-1.csv", good_csv())
    first = start_after_quiet_period(deps)
    _fail(deps, first)
    deps.clock.advance(BACKOFF)
    second = start_training_if_due(deps)
    _fail(deps, second)

    deps.clock.advance(100 * BACKOFF)
    assert start_training_if_due(deps) is None
    reconciliation.reconcile(deps)

    assert sorted(deps.jobs.submitted) == sorted([first, second])
    assert run_state(deps, second)["status"] == "failed"
    [given_up] = actions(deps, "run.given_up")
    assert given_up.subject == second
    assert "try 2 of 2" in given_up.detail["reason"] and "new trigger" in given_up.detail["reason"]

    on_drift_detected(drift_detected(deps, event_id="evt-drift-later"), deps)
    third = start_after_quiet_period(deps)

    assert third == f"{first}-3"
    assert run_state(deps, third)["attempt"] == 1  # a new cause counts its tries afresh
    assert run_state(deps, third)["request"]["causes"] == ["drift"]


def test_each_retry_waits_twice_as_long_as_the_one_before() -> None:
    deps = _deps()
    land(deps, "batch-1.csv", good_csv())
    first = start_after_quiet_period(deps)
    _fail(deps, first)
    deps.clock.advance(BACKOFF)
    second = start_training_if_due(deps)
    failed_at = deps.clock()
    _fail(deps, second)

    retry_at = datetime.fromisoformat(run_state(deps, second)["retry_at"])
    assert (retry_at - failed_at).total_seconds() == 2 * BACKOFF


def test_a_run_the_backend_lost_is_timed_out_with_the_reason_and_tried_again() -> None:
    deps = _deps()
    land(deps, "batch-1.csv", good_csv())
    first = start_after_quiet_period(deps)
    deps.jobs.statuses.pop(first)

    reconciliation.reconcile(deps)
    deps.clock.advance(BACKOFF)
    reconciliation.reconcile(deps)

    [timed_out] = actions(deps, "run.timed_out")
    assert "does not know the job" in timed_out.detail["reason"]
    assert run_state(deps, f"{first}-2")["status"] == "running"


def test_a_submit_that_always_fails_times_out_and_is_given_up_after_the_last_try() -> None:
    deps = _deps(MLOPS_RUN_MAX_ATTEMPTS="2", MLOPS_RUN_START_TIMEOUT_SECONDS="600")
    calls: list[str] = []

    def refuse(job: TrainingJob) -> None:
        calls.append(job.run_id)
        raise ConnectionError("workspace unreachable")

    deps.jobs.submit = refuse  # type: ignore[method-assign]
    land(deps, "batch-1.csv", good_csv())
    deps.clock.advance(deps.settings.runs.quiet_period_seconds + 1)
    for _ in range(120):  # two hours of reconcile ticks
        try:
            reconciliation.reconcile(deps)
        except RuntimeError as error:  # the first start of a run says why it failed
            assert "workspace unreachable" in str(error)
        deps.clock.advance(60)

    assert deps.jobs.submitted == {}
    assert 2 <= len(set(calls)) <= 2 and len(calls) <= 2 * 12  # two tries, each within the start timeout
    timed_out = actions(deps, "run.timed_out")
    assert len(timed_out) == 2
    assert all("workspace unreachable" in e.detail["reason"] for e in timed_out)
    [given_up] = actions(deps, "run.given_up")
    assert "try 2 of 2" in given_up.detail["reason"]
    assert run_state(deps, sorted(set(calls))[0])["failure"]["stage"] == "submit"


def test_a_run_started_for_a_new_trigger_during_the_back_off_answers_the_failed_run_instead_of_a_retry() -> (
    None
):
    deps = _deps()
    land(deps, "batch-1.csv", good_csv())
    first = start_after_quiet_period(deps)
    _fail(deps, first)

    on_drift_detected(drift_detected(deps, event_id="evt-drift-meanwhile"), deps)
    second = start_after_quiet_period(deps)
    deps.jobs.complete(second, evaluation())
    on_run_completed(run_completed(deps, second), deps)
    deps.clock.advance(10 * BACKOFF)

    assert start_training_if_due(deps) is None
    assert sorted(deps.jobs.submitted) == sorted([first, second])
    assert run_state(deps, second)["status"] == "registered"


def test_only_the_failure_for_good_is_announced_with_its_reason() -> None:
    deps = _deps(MLOPS_RUN_MAX_ATTEMPTS="2")
    land(deps, "batch-1.csv", good_csv())
    first = start_after_quiet_period(deps)
    _fail(deps, first)
    assert [e.event_type for e in deps.publisher.events if e.event_type == "MLOps.RunFailed"] == []

    deps.clock.advance(BACKOFF)
    second = start_training_if_due(deps)
    _fail(deps, second)
    _fail(deps, second)  # the failure delivered again

    [announced] = [e for e in deps.publisher.events if e.event_type == "MLOps.RunFailed"]
    assert announced.subject == f"runs/{second}" and announced.id == f"runs/{second}:given_up"
    assert announced.data["runId"] == second
    assert (announced.data["attempt"], announced.data["maxAttempts"]) == (2, 2)
    assert announced.data["reason"] == "exited with 1" and announced.data["stage"] == "command"
