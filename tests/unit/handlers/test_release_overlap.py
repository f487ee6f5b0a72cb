"""One release at a time per endpoint: a newer registration supersedes the releases still on their way, an older
version never replaces production, interleaved promotions leave one production release, and each reconcile tick
brings the traffic back to what the records say."""

from __future__ import annotations

from shared.handlers import reconcile as reconciliation
from shared.handlers.release import advance
from shared.handlers.training import on_run_completed
from shared.ports import ModelVersion
from shared.state import keys
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
from tests.fakes import FakeDeps, make_deps


def _next_model(deps: FakeDeps, n: int) -> ModelVersion:
    """Land a new batch and train on it: the registry's next version (its event not delivered yet)."""
    land(deps, f"batch-{n}.csv", good_csv(offset=100 * n))
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation(rmse=2.0, champion={"r2": 0.9, "rmse": 3.0, "mae": 1.5}))
    on_run_completed(run_completed(deps, run_id, event_id=f"evt-done-{n}"), deps)
    return deps.registry.models[MODEL][-1]


def _production_releases(deps: FakeDeps) -> list[str]:
    return [s.record.id for s in deps.state.list(keys.RELEASES) if s.record.status == "production"]


def test_a_newer_registration_supersedes_a_baking_canary_which_never_promotes() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="300", MLOPS_CANARY_PERCENT="10")
    second = second_release(deps)
    assert advance(second, deps, "reconcile") == "canary"
    assert deps.endpoints.traffic() == {"model-v1": 90, "model-v2": 10}

    third = deploy(deps, _next_model(deps, 3))

    assert release_status(deps, second) == "superseded"
    assert deps.endpoints.deployment("model-v2") is None
    assert deps.endpoints.traffic() == {"model-v1": 100, "model-v3": 0}
    [superseded] = actions(deps, "release.superseded")
    assert superseded.subject == second and third in superseded.detail["reason"]
    assert release_state(deps, second)["history"][-1]["status"] == "superseded"
    deps.endpoints.set_state("model-v3", "Succeeded")
    assert advance(third, deps, "reconcile") == "canary"
    assert deps.endpoints.traffic() == {"model-v1": 90, "model-v3": 10}
    deps.endpoints.set_stats("model-v3", requests=50)
    deps.clock.advance(301)
    assert advance(second, deps, "reconcile") == "superseded"
    assert advance(third, deps, "reconcile") == "production"
    assert deps.endpoints.traffic() == {"model-v1": 0, "model-v3": 100}
    assert (production_state(deps)["version"], production_state(deps)["previous"]["version"]) == ("3", "1")
    assert _production_releases(deps) == [f"{MODEL}-v3"]


def test_an_older_release_finishing_late_never_replaces_a_newer_production_model() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    first = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    assert advance(first, deps, "reconcile") == "production"
    second = deploy(deps, _next_model(deps, 2))  # its deployment still creating
    third = deploy(deps, _next_model(deps, 3))
    deps.endpoints.set_state("model-v3", "Succeeded")
    assert advance(third, deps, "reconcile") == "production"

    assert advance(second, deps, "reconcile") == "superseded"
    reconciliation.reconcile(deps)

    assert production_state(deps)["version"] == "3"
    assert deps.endpoints.traffic() == {"model-v1": 0, "model-v3": 100}
    assert _production_releases(deps) == [third]


def test_a_late_event_for_an_older_version_is_never_deployed() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    reconciliation.reconcile(deps)
    older = _next_model(deps, 2)  # its ModelRegistered comes late
    third = deploy(deps, _next_model(deps, 3))
    deps.endpoints.set_state("model-v3", "Succeeded")
    assert advance(third, deps, "reconcile") == "production"

    late = deploy(deps, older)

    assert release_status(deps, late) == "superseded"
    assert deps.endpoints.deployment("model-v2") is None
    assert production_state(deps)["version"] == "3"
    assert [e.subject for e in actions(deps, "deployment.started")] == [f"{MODEL}-v1", third]
    [superseded] = actions(deps, "release.superseded")
    assert superseded.subject == late and "not newer than production version 3" in superseded.detail["reason"]


def test_interleaved_promotions_leave_one_production_release_and_the_newer_deployment() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    first = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    assert advance(first, deps, "reconcile") == "production"
    second_model, third_model = _next_model(deps, 2), _next_model(deps, 3)
    second = deploy(deps, second_model)
    deps.endpoints.set_state("model-v2", "Succeeded")
    deps.endpoints.initial_state = "Succeeded"
    # While version 2 switches traffic to itself, version 3 is registered and handled by another worker.
    deps.endpoints.before_once("set_traffic", lambda: deploy(deps, third_model))

    advance(second, deps, "reconcile")
    reconciliation.reconcile(deps)

    assert production_state(deps)["version"] == "3"
    assert _production_releases(deps) == [f"{MODEL}-v3"]
    assert deps.endpoints.traffic()["model-v3"] == 100
    assert release_status(deps, second) == "superseded"


def test_each_tick_brings_traffic_back_to_what_the_records_say() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="300", MLOPS_CANARY_PERCENT="10")
    second = second_release(deps)
    assert advance(second, deps, "reconcile") == "canary"
    reconciliation.reconcile(deps)
    assert deps.endpoints.traffic() == {"model-v1": 90, "model-v2": 10}  # a baking canary keeps its share
    assert actions(deps, "traffic.restored") == []
    deps.endpoints.set_stats("model-v2", requests=50)
    deps.clock.advance(301)
    assert advance(second, deps, "reconcile") == "production"

    deps.endpoints.set_traffic({"model-v1": 100, "model-v2": 0})  # a stalled worker's late call lands
    reconciliation.reconcile(deps)
    reconciliation.reconcile(deps)

    assert deps.endpoints.traffic() == {"model-v1": 0, "model-v2": 100}
    [restored] = actions(deps, "traffic.restored")
    assert restored.detail["found"] == {"model-v1": 100}
    assert restored.detail["restored"] == {"model-v2": 100}


def test_once_the_newer_release_failed_a_late_older_one_newer_than_production_is_released() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    reconciliation.reconcile(deps)
    older = _next_model(deps, 2)  # its ModelRegistered comes late
    third = deploy(deps, _next_model(deps, 3))
    deps.endpoints.set_state("model-v3", "Failed", detail="image build failed")
    assert advance(third, deps, "reconcile") == "rolled_back"

    late = deploy(deps, older)
    deps.endpoints.set_state("model-v2", "Succeeded")

    assert advance(late, deps, "reconcile") == "production"
    assert production_state(deps)["version"] == "2"
    assert deps.endpoints.traffic() == {"model-v1": 0, "model-v2": 100}
