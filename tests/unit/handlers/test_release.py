"""Releases on fakes: deployment, smoke test, approval, canary, promotion and rollback."""

from __future__ import annotations

import pytest

from shared.handlers import reconcile as reconciliation
from shared.handlers.release import advance, decide_approval, on_model_registered, release_id, roll_back
from shared.handlers.training import on_run_completed
from shared.ports import ModelVersion
from tests.builders import (
    MODEL,
    actions,
    deploy,
    evaluation,
    good_csv,
    land,
    production_state,
    release_state,
    release_status,
    run_completed,
    start_after_quiet_period,
    train,
)
from tests.fakes import FakeDeps, make_deps


def test_a_registered_model_starts_a_deployment_without_traffic() -> None:
    deps = make_deps()
    model = train(deps)

    rid = deploy(deps, model)

    assert release_status(deps, rid) == "deploying"
    deployment = deps.endpoints.deployment("model-v1")
    assert deployment is not None and deployment.model == model.id
    assert deps.endpoints.traffic() == {"model-v1": 0}
    assert [e.subject for e in actions(deps, "deployment.started")] == [rid]


def test_a_succeeded_deployment_is_smoke_tested_and_promoted_to_production() -> None:
    deps = make_deps()
    model = train(deps)
    rid = deploy(deps, model)
    deps.endpoints.set_state("model-v1", "Succeeded")

    assert advance(rid, deps, "reconcile") == "production"

    assert deps.endpoints.traffic() == {"model-v1": 100}
    production = production_state(deps)
    assert production is not None
    assert (production["model"], production["version"], production["deployment"]) == (MODEL, "1", "model-v1")
    assert production["previous"] is None
    payloads = deps.endpoints.payloads  # one request per row, as clients send them
    assert len(payloads) == deps.settings.smoke_test_rows
    assert all(
        p["input_data"]["columns"] == ["x1", "x2"] for p in payloads
    )  # features only, never the target
    history = [step["status"] for step in release_state(deps, rid)["history"]]
    assert history == ["deploying", "smoke_testing", "approved", "promoting", "production"]
    assert actions(deps)[-1] == "release.promoted"
    assert deps.audit.verify() == []


def test_a_new_model_replaces_the_old_and_keeps_it_for_rollback() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    first = train(deps)
    deploy(deps, first)
    deps.endpoints.set_state("model-v1", "Succeeded")
    reconciliation.reconcile(deps)
    land(deps, "batch-2.csv", good_csv(offset=100))
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation(rmse=2.0, champion={"r2": 0.9, "rmse": 3.0, "mae": 1.5}))
    on_run_completed(run_completed(deps, run_id), deps)
    [_, second] = deps.registry.models[MODEL]

    rid = deploy(deps, second)
    deps.endpoints.set_state("model-v2", "Succeeded")
    assert advance(rid, deps, "reconcile") == "production"

    assert deps.endpoints.traffic() == {"model-v1": 0, "model-v2": 100}
    assert production_state(deps)["previous"]["version"] == "1"
    assert release_status(deps, release_id(MODEL, "1")) == "superseded"
    assert deps.audit.verify() == []


def test_with_approval_required_a_release_waits_for_an_approver() -> None:
    deps = make_deps(MLOPS_REQUIRE_APPROVAL="true")
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")

    assert advance(rid, deps, "reconcile") == "awaiting_approval"
    assert advance(rid, deps, "reconcile") == "awaiting_approval"
    assert production_state(deps) is None
    assert deps.endpoints.traffic() == {"model-v1": 0}

    code, message = decide_approval(rid, True, "alice@example.com", "looks good", deps)

    assert code == 200, message
    assert release_status(deps, rid) == "production"
    assert deps.endpoints.traffic() == {"model-v1": 100}
    [approved] = [e for e in actions(deps, "release.approved") if e.actor == "approve"]
    assert approved.detail == {
        "model": f"{MODEL}:1",
        "deployment": "model-v1",
        "approver": "alice@example.com",
        "comment": "looks good",
    }

    again, message = decide_approval(rid, True, "bob@example.com", "", deps)

    assert again == 409
    assert "not awaiting approval" in message
    assert deps.audit.verify() == []


def test_a_rejected_approval_fails_the_release_and_removes_its_deployment() -> None:
    deps = make_deps(MLOPS_REQUIRE_APPROVAL="true")
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    advance(rid, deps, "reconcile")

    code, _ = decide_approval(rid, False, "alice@example.com", "not today", deps)

    assert code == 200
    assert release_status(deps, rid) == "rejected"
    assert deps.endpoints.deployments() == []
    assert production_state(deps) is None


def test_approving_a_release_that_does_not_exist_is_refused() -> None:
    code, message = decide_approval("mlops-model-v9", True, "alice", "", make_deps())

    assert code == 404
    assert "does not exist" in message


def test_a_failed_deployment_fails_the_release_and_production_is_untouched() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Failed", detail="image build failed")

    assert advance(rid, deps, "reconcile") == "rolled_back"

    assert deps.endpoints.deployments() == []
    assert production_state(deps) is None
    [failed] = actions(deps, "release.rolling_back")
    assert failed.detail["reason"] == "deployment failed: image build failed"
    [event] = deps.publisher.events
    assert event.event_type == "MLOps.ReleaseRolledBack" and event.data["releaseId"] == rid
    assert deps.audit.verify() == []


def test_a_failing_smoke_test_fails_the_release() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    deps.endpoints.scoring_error = RuntimeError("model crashed on input")

    assert advance(rid, deps, "reconcile") == "rolled_back"

    [failed] = actions(deps, "release.rolling_back")
    assert failed.detail["reason"].startswith("smoke test:")
    assert "model crashed on input" in failed.detail["reason"]
    assert deps.endpoints.deployments() == []


def test_non_finite_predictions_fail_the_smoke_test() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    deps.endpoints.prediction = float("nan")

    assert advance(rid, deps, "reconcile") == "rolled_back"

    [failed] = actions(deps, "release.rolling_back")
    assert "NaN" in failed.detail["reason"]


def test_a_model_registered_twice_is_deployed_once() -> None:
    deps = make_deps()
    model = train(deps)
    deploy(deps, model)

    deploy(deps, model)

    assert len(actions(deps, "deployment.started")) == 1
    assert [d.name for d in deps.endpoints.deployments()] == ["model-v1"]


def test_a_model_this_app_does_not_manage_is_ignored() -> None:
    deps = make_deps()
    other = ModelVersion("someone-else", "3", {}, "memory://x")

    on_model_registered(deps.registry.announcement(other), deps)

    [ignored] = actions(deps, "event.ignored")
    assert ignored.subject == "someone-else:3"
    assert deps.endpoints.deployments() == []


def test_a_redelivery_after_a_failed_deployment_request_retries_the_deployment() -> None:
    deps = make_deps()
    model = train(deps)
    deps.endpoints.fail_once("begin_deployment", ConnectionError("endpoint API unavailable"))
    announcement = deps.registry.announcement(model)
    with pytest.raises(ConnectionError):
        on_model_registered(announcement, deps)  # raising makes Event Grid redeliver

    on_model_registered(announcement, deps)

    rid = release_id(MODEL, model.version)
    assert release_status(deps, rid) == "deploying"
    assert deps.endpoints.deployment("model-v1") is not None


def test_promoting_one_release_keeps_the_deployment_of_another_awaiting_approval() -> None:
    deps = make_deps(MLOPS_REQUIRE_APPROVAL="true", MLOPS_CANARY_SECONDS="0")
    first = train(deps)
    first_release = deploy(deps, first)
    deps.endpoints.set_state("model-v1", "Succeeded")
    assert advance(first_release, deps, "reconcile") == "awaiting_approval"
    land(deps, "batch-2.csv", good_csv(offset=100))
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation())
    on_run_completed(run_completed(deps, run_id), deps)
    second_release = deploy(deps, deps.registry.models[MODEL][1])
    deps.endpoints.set_state("model-v2", "Succeeded")
    assert advance(second_release, deps, "reconcile") == "awaiting_approval"

    decide_approval(first_release, True, "alice", "", deps)

    assert deps.endpoints.deployment("model-v2") is not None
    done, _ = decide_approval(second_release, True, "alice", "", deps)
    assert done
    assert release_status(deps, second_release) == "production"
    assert deps.endpoints.traffic() == {"model-v1": 0, "model-v2": 100}


def second_release(deps: FakeDeps) -> str:
    """Version 1 in production, version 2 registered and deployed (Succeeded); returns v2's release id."""
    first = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    assert advance(first, deps, "reconcile") == "production"
    land(deps, "batch-2.csv", good_csv(offset=100))
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation(rmse=2.0, champion={"r2": 0.9, "rmse": 3.0, "mae": 1.5}))
    on_run_completed(run_completed(deps, run_id, event_id="evt-done-2"), deps)
    rid = deploy(deps, deps.registry.models[MODEL][1])
    deps.endpoints.set_state("model-v2", "Succeeded")
    return rid


def test_a_healthy_canary_bakes_then_takes_all_traffic() -> None:
    deps = make_deps(MLOPS_CANARY_PERCENT="10", MLOPS_CANARY_SECONDS="300")
    rid = second_release(deps)

    assert advance(rid, deps, "reconcile") == "canary"
    assert deps.endpoints.traffic() == {"model-v1": 90, "model-v2": 10}
    deps.endpoints.set_stats("model-v2", requests=200, errors=0, p95_ms=40)
    deps.clock.advance(120)
    assert advance(rid, deps, "reconcile") == "canary"  # still baking

    deps.clock.advance(200)
    assert advance(rid, deps, "reconcile") == "production"
    assert deps.endpoints.traffic() == {"model-v1": 0, "model-v2": 100}
    promoted = [e for e in deps.publisher.events if e.event_type == "MLOps.ModelPromoted"]
    assert [e.data["modelVersion"] for e in promoted] == ["1", "2"]
    assert deps.audit.verify() == []


def test_a_canary_that_errs_is_rolled_back_and_production_keeps_serving() -> None:
    deps = make_deps(MLOPS_CANARY_MAX_ERROR_RATE="0.01")
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "canary"

    deps.endpoints.set_stats("model-v2", requests=100, errors=7, p95_ms=30)
    deps.clock.advance(60)

    assert advance(rid, deps, "reconcile") == "rolled_back"
    assert deps.endpoints.traffic() == {"model-v1": 100}
    assert deps.endpoints.deployment("model-v2") is None
    assert production_state(deps)["version"] == "1"
    [rolling] = actions(deps, "release.rolling_back")
    assert "error rate 7.0%" in rolling.detail["reason"]
    [event] = [e for e in deps.publisher.events if e.event_type == "MLOps.ReleaseRolledBack"]
    assert event.data["restored"] == f"{MODEL}:1"


def test_a_slow_or_dead_canary_is_rolled_back() -> None:
    deps = make_deps(MLOPS_LATENCY_SLO_MS="100")
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "canary"
    deps.endpoints.set_stats("model-v2", requests=50, errors=0, p95_ms=900)

    assert advance(rid, deps, "reconcile") == "rolled_back"
    [rolling] = actions(deps, "release.rolling_back")
    assert "latency" in rolling.detail["reason"]

    other = make_deps()
    dead = second_release(other)
    assert advance(dead, other, "reconcile") == "canary"
    other.endpoints.set_state("model-v2", "Failed", detail="scoring process exited")
    assert advance(dead, other, "reconcile") == "rolled_back"
    assert other.endpoints.traffic() == {"model-v1": 100}


def test_an_approval_request_is_published_and_expires_unanswered() -> None:
    deps = make_deps(MLOPS_REQUIRE_APPROVAL="true", MLOPS_APPROVAL_TIMEOUT_SECONDS="3600")
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    assert advance(rid, deps, "reconcile") == "awaiting_approval"
    [requested] = [e for e in deps.publisher.events if e.event_type == "MLOps.ApprovalRequested"]
    assert requested.data["releaseId"] == rid

    deps.clock.advance(3601)
    reconciliation.reconcile(deps)

    assert release_status(deps, rid) == "expired"
    assert deps.endpoints.deployments() == []
    code, message = decide_approval(rid, True, "alice", "", deps)
    assert code == 409 and "expired" in message


def test_a_production_release_can_be_rolled_back_by_hand() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "production"

    code, message = roll_back(rid, "alice@example.com", "customers complain", deps)

    assert code == 200, message
    assert release_status(deps, rid) == "rolled_back"
    assert release_status(deps, release_id(MODEL, "1")) == "production"
    assert production_state(deps)["version"] == "1"
    assert deps.endpoints.traffic() == {"model-v1": 100}
    [entry] = actions(deps, "release.rolled_back")
    assert entry.detail["requested_by"] == "alice@example.com"
    again, message = roll_back(rid, "alice@example.com", "", deps)
    assert again == 409
