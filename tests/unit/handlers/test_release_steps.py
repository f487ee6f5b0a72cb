"""The release steps on fakes: a deployment that fails, the smoke test, the canary and its watching, an approval
that expires."""

from __future__ import annotations

from shared.handlers import reconcile as reconciliation
from shared.handlers.release import advance, decide_approval
from tests.builders import (
    MODEL,
    actions,
    deploy,
    production_state,
    release_status,
    second_release,
    train,
)
from tests.fakes import make_deps


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
