"""Evidence and deadlines: a canary is promoted on live requests only, its bake is extended up to a deadline, its
metrics are retried within bounds, no status on the way lasts for ever, and a cold start is warmed up, never
measured."""

from __future__ import annotations

import pytest

from shared.handlers.queries import status
from shared.handlers.release import advance
from tests.builders import (
    actions,
    deploy,
    production_state,
    release_state,
    release_status,
    second_release,
    train,
)
from tests.fakes import make_deps

CANARY = {"MLOPS_CANARY_SECONDS": "300", "MLOPS_CANARY_MAX_SECONDS": "900", "MLOPS_CANARY_MIN_REQUESTS": "20"}


def _reason(deps, rid: str) -> str:
    return next(s["detail"]["reason"] for s in release_state(deps, rid)["history"] if "reason" in s["detail"])


def test_a_canary_without_requests_bakes_on_then_is_rolled_back_saying_how_many_came() -> None:
    deps = make_deps(**CANARY)
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "canary"

    deps.clock.advance(301)
    assert advance(rid, deps, "reconcile") == "canary"  # baked, but nobody asked it anything yet
    deps.endpoints.set_stats("model-v2", requests=13)  # 8 of which may be the smoke test's own
    deps.clock.advance(600)
    assert advance(rid, deps, "reconcile") == "rolled_back"

    reason = _reason(deps, rid)
    assert "5 live requests" in reason and "20 required" in reason
    assert production_state(deps)["version"] == "1"
    assert deps.endpoints.traffic() == {"model-v1": 100}


def test_a_canary_whose_requests_come_during_the_extension_is_promoted_on_them() -> None:
    deps = make_deps(**CANARY)
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "canary"
    deps.clock.advance(301)
    assert advance(rid, deps, "reconcile") == "canary"

    deps.endpoints.set_stats("model-v2", requests=40, errors=0, p95_ms=30)
    deps.clock.advance(60)

    assert advance(rid, deps, "reconcile") == "production"
    [promoting] = [s for s in release_state(deps, rid)["history"] if s["status"] == "promoting"]
    assert promoting["detail"]["canary"]["requests"] >= 20


def test_the_platforms_own_smoke_requests_are_no_canary_evidence() -> None:
    deps = make_deps(**CANARY)  # 5 smoke-test rows after 3 warm-up requests, just before the canary began
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "canary"
    deps.endpoints.set_stats("model-v2", requests=25)  # Azure Monitor's first whole minute may hold those 8
    deps.clock.advance(301)
    assert advance(rid, deps, "reconcile") == "canary"

    deps.endpoints.set_stats("model-v2", requests=28)

    assert advance(rid, deps, "reconcile") == "production"
    [promoting] = [s for s in release_state(deps, rid)["history"] if s["status"] == "promoting"]
    canary = promoting["detail"]["canary"]
    assert (canary["requests"], canary["counted"], canary["probes_excluded"]) == (20, 28, 8)


def test_unreadable_canary_metrics_are_retried_then_roll_the_release_back_with_the_reason() -> None:
    deps = make_deps(**CANARY)
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "canary"
    deps.endpoints.set_stats("model-v2", requests=50)
    deps.endpoints.fail_once("stats", ConnectionError("metrics API unavailable"))
    deps.clock.advance(301)
    assert advance(rid, deps, "reconcile") == "production"  # one failed read is retried within the tick

    other = make_deps(**CANARY)
    broken = second_release(other)
    assert advance(broken, other, "reconcile") == "canary"
    for _ in range(100):
        other.endpoints.fail_once("stats", PermissionError("403: not allowed to read metrics"))
    other.clock.advance(301)
    assert advance(broken, other, "reconcile") == "canary"  # no evidence yet: it bakes on
    other.clock.advance(600)
    assert advance(broken, other, "reconcile") == "rolled_back"
    assert "metrics could not be read" in _reason(other, broken)
    assert "not allowed to read metrics" in _reason(other, broken)
    assert other.endpoints.traffic() == {"model-v1": 100}


def test_a_deployment_that_never_finishes_is_rolled_back_at_the_deadline() -> None:
    deps = make_deps(MLOPS_RELEASE_STEP_TIMEOUT_SECONDS="600")
    rid = deploy(deps, train(deps))
    deps.clock.advance(300)
    assert advance(rid, deps, "reconcile") == "deploying"

    deps.clock.advance(301)

    assert advance(rid, deps, "reconcile") == "rolled_back"
    assert "deploying for 601 s" in _reason(deps, rid)
    assert deps.endpoints.deployments() == []


def test_a_rollback_that_cannot_finish_is_recorded_as_stuck() -> None:
    deps = make_deps(MLOPS_RELEASE_STEP_TIMEOUT_SECONDS="600")
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Failed", detail="image build failed")
    for _ in range(100):
        deps.endpoints.fail_once("delete_deployment", ConnectionError("endpoint API unavailable"))
    with pytest.raises(ConnectionError):
        advance(rid, deps, "reconcile")
    assert release_status(deps, rid) == "rolling_back"

    deps.clock.advance(601)

    assert advance(rid, deps, "reconcile") == "stuck"
    [stuck] = actions(deps, "release.stuck")
    assert "not rolled back within 600 s" in stuck.detail["reason"]
    assert "endpoint API unavailable" in stuck.detail["last_error"]
    [listed] = status(deps)["stuck"]
    assert listed["key"] == f"releases/{rid}" and "not rolled back within 600 s" in listed["reason"]


def test_a_cold_start_is_warmed_up_and_not_measured() -> None:
    deps = make_deps(MLOPS_LATENCY_SLO_MS="50")
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    deps.endpoints.cold_start("model-v1", requests=2, seconds=0.12)  # loading the model

    assert advance(rid, deps, "reconcile") == "production"
    smoke = next(
        s["detail"]["smoke_test"] for s in release_state(deps, rid)["history"] if "smoke_test" in s["detail"]
    )
    assert smoke["warmup"] == 3 and smoke["p95_ms"] < 50

    measured_cold = make_deps(MLOPS_LATENCY_SLO_MS="50", MLOPS_SMOKE_WARMUP_REQUESTS="0")
    cold = deploy(measured_cold, train(measured_cold))
    measured_cold.endpoints.set_state("model-v1", "Succeeded")
    measured_cold.endpoints.cold_start("model-v1", requests=2, seconds=0.12)
    assert advance(cold, measured_cold, "reconcile") == "rolled_back"
    assert "p95 latency" in _reason(measured_cold, cold)
