"""The release invariants catch what they are for: two production releases, traffic that is not what the
production record says, and a canary promoted without live requests."""

from __future__ import annotations

import dataclasses

from shared.config import Settings
from shared.handlers.release import advance, release_id
from shared.state import releases
from shared.state.records import ReleaseStatus
from shared.testing import invariants
from tests.builders import MODEL, second_release
from tests.fakes import TEST_SETTINGS, make_deps


def test_a_clean_release_keeps_every_release_invariant() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    assert advance(second_release(deps), deps, "reconcile") == "production"

    assert invariants.check(deps) == []


def test_two_production_releases_are_a_violation() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    assert advance(second_release(deps), deps, "reconcile") == "production"

    releases.set_status(deps.state, release_id(MODEL, "1"), ReleaseStatus.PRODUCTION)

    assert f"{MODEL}: 2 releases in production" in invariants.check(deps)


def test_traffic_that_is_not_the_production_record_is_a_violation_once_no_release_is_on_its_way() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    assert advance(second_release(deps), deps, "reconcile") == "production"

    deps.endpoints.set_traffic({"model-v1": 100, "model-v2": 0})

    [problem] = invariants.check(deps)
    assert problem.startswith("traffic {'model-v1': 100} is not what the production record says")


def test_a_canary_promoted_without_enough_requests_is_a_violation() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="60", MLOPS_CANARY_MIN_REQUESTS="0")
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "canary"
    deps.clock.advance(61)
    assert advance(rid, deps, "reconcile") == "production"  # promoted on no requests at all
    assert invariants.check(deps) == []

    stricter = dataclasses.replace(
        deps, settings=Settings.from_env({**TEST_SETTINGS, "MLOPS_CANARY_MIN_REQUESTS": "20"})
    )

    assert invariants.check(stricter) == [f"{rid}: promoted after a canary with 0 requests (< 20)"]
