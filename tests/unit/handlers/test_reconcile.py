"""The reconcile tick on fakes: what it repairs when events were lost or handlers crashed."""

from __future__ import annotations

import pytest

from shared.handlers import reconcile as reconciliation
from shared.handlers.release import advance
from tests.builders import (
    actions,
    deploy,
    evaluation,
    good_csv,
    land,
    production_state,
    release_status,
    run_state,
    start_after_quiet_period,
    train,
)
from tests.fakes import make_deps


def test_a_scheduled_retrain_without_data_waits() -> None:
    deps = make_deps()

    reconciliation.scheduled_retrain(deps, tick_id="schedule-1")
    assert start_after_quiet_period(deps) is None

    [waiting] = actions(deps, "training.waiting")
    assert waiting.detail["reason"] == "no accepted data yet"
    assert deps.jobs.submitted == {}


def test_reconcile_chases_a_run_whose_completion_event_never_came() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation())
    deps.clock.advance(31)

    reconciliation.reconcile(deps)

    assert run_state(deps, run_id)["status"] == "registered"
    assert len(deps.registry.announced) == 1


def test_reconcile_fails_a_run_the_backend_lost() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    deps.jobs.statuses.pop(run_id)

    reconciliation.reconcile(deps)

    assert run_state(deps, run_id)["status"] == "failed"
    [timed_out] = actions(deps, "run.timed_out")
    assert timed_out.detail["backend_status"] == "NotFound"


def test_reconcile_advances_an_active_release() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")

    result = reconciliation.reconcile(deps)

    assert result["releases"] == {rid: "production"}


def test_promotion_interrupted_after_switching_traffic_completes_on_the_next_tick() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    deps.endpoints.fail_once("deployments", ConnectionError("endpoint API unavailable"))
    with pytest.raises(ConnectionError):
        advance(rid, deps, "reconcile")

    reconciliation.reconcile(deps)

    assert release_status(deps, rid) == "production"
    assert production_state(deps)["previous"] is None


def test_a_run_whose_results_cannot_be_read_does_not_stop_reconcile() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    land(deps, "batch-2.csv", good_csv(offset=100))
    run_id = start_after_quiet_period(deps)
    deps.jobs.statuses[run_id] = "Completed"  # but its evaluation was never written
    deps.clock.advance(deps.settings.runs.timeout_seconds + 1)

    reconciliation.reconcile(deps)

    assert release_status(deps, rid) == "production"
    assert run_state(deps, run_id)["status"] == "failed"
