"""What serves is provably what was evaluated: the registered model's files are hashed as the job hashed the model
it evaluated, before the deployment and again before the promotion; files that changed stop the release."""

from __future__ import annotations

from shared.handlers.release import advance
from shared.handlers.training import on_run_completed
from tests.builders import (
    MODEL,
    deploy,
    evaluation,
    good_csv,
    land,
    production_state,
    release_status,
    run_completed,
    start_after_quiet_period,
    train,
)
from tests.fakes import make_deps

EVALUATED = "ab" * 32


def test_files_that_are_the_evaluated_ones_are_released_and_that_is_recorded() -> None:
    deps = make_deps()
    model = train(deps, model_sha256=EVALUATED)
    assert model.tags["mlops.model_sha256"] == EVALUATED
    rid = deploy(deps, model)
    deps.endpoints.set_state("model-v1", "Succeeded")

    assert advance(rid, deps, "reconcile") == "production"
    [smoke] = [e for e in deps.audit.entries() if e.subject == rid and e.detail.get("integrity")]
    assert smoke.detail["integrity"] == "verified"


def test_files_changed_after_registration_are_never_deployed() -> None:
    deps = make_deps()
    model = train(deps, model_sha256=EVALUATED)
    deps.registry.tamper(model)

    rid = deploy(deps, model)
    assert deps.endpoints.deployment("model-v1") is None  # nothing began
    assert advance(rid, deps, "reconcile") == "rolled_back"

    reason = next(
        e.detail["reason"] for e in deps.audit.entries() if e.subject == rid and "reason" in e.detail
    )
    assert "not the ones evaluated" in reason and EVALUATED[:16] in reason
    assert production_state(deps) is None


def test_files_changed_during_the_canary_are_not_promoted() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="60")
    first = deploy(deps, train(deps, model_sha256=EVALUATED))
    deps.endpoints.set_state("model-v1", "Succeeded")
    assert advance(first, deps, "reconcile") == "production"
    land(deps, "batch-2.csv", good_csv(offset=100))
    run_id = start_after_quiet_period(deps)
    champion = {"r2": 0.9, "rmse": 3.0, "mae": 1.5}
    deps.jobs.complete(run_id, evaluation(rmse=2.0, champion=champion, model_sha256="cd" * 32))
    on_run_completed(run_completed(deps, run_id, event_id="evt-done-2"), deps)
    second = deps.registry.models[MODEL][1]
    rid = deploy(deps, second)
    deps.endpoints.set_state("model-v2", "Succeeded")
    assert advance(rid, deps, "reconcile") == "canary"

    deps.registry.tamper(second)
    deps.endpoints.set_stats("model-v2", requests=50)
    deps.clock.advance(61)
    assert advance(rid, deps, "reconcile") == "rolled_back"

    assert production_state(deps)["version"] == "1"
    assert any(
        "not the ones evaluated" in str(e.detail.get("reason"))
        for e in deps.audit.entries()
        if e.subject == rid
    )


def test_a_model_registered_without_a_hash_is_released_and_says_so() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")

    assert release_status(deps, rid) == "deploying"
    assert advance(rid, deps, "reconcile") == "production"
    assert any(e.detail.get("integrity") == "not recorded" for e in deps.audit.entries() if e.subject == rid)
