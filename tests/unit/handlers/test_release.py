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
    second_release,
    start_after_quiet_period,
    train,
)
from tests.fakes import make_deps


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
    payloads = (
        deps.endpoints.payloads
    )  # a few warm-up requests, then one request per row, as clients send them
    release = deps.settings.release
    assert len(payloads) == release.smoke_warmup_requests + release.smoke_test_rows
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


def test_a_newer_model_supersedes_a_release_awaiting_approval() -> None:
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

    assert release_status(deps, first_release) == "superseded"
    assert deps.endpoints.deployment("model-v1") is None
    refused, message = decide_approval(first_release, True, "alice", "", deps)
    assert refused == 409 and "superseded" in message
    deps.endpoints.set_state("model-v2", "Succeeded")
    assert advance(second_release, deps, "reconcile") == "awaiting_approval"
    done, _ = decide_approval(second_release, True, "alice", "", deps)
    assert done == 200
    assert release_status(deps, second_release) == "production"
    assert deps.endpoints.traffic() == {"model-v2": 100}
    [superseded] = actions(deps, "release.superseded")
    assert superseded.subject == first_release and second_release in superseded.detail["reason"]


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
