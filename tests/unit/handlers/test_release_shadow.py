"""The shadow stage on fakes: mirrored copies before the canary, judged on errors, latency and agreement with
production on the same requests; rolled back before any client sees a bad answer."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from shared.handlers.release import advance
from tests.builders import actions, production_state, second_release, serve
from tests.fakes import FakeDeps, make_deps

SHADOW = {
    "MLOPS_SHADOW_SECONDS": "300",
    "MLOPS_SHADOW_MAX_SECONDS": "900",
    "MLOPS_SHADOW_MIN_REQUESTS": "5",
    "MLOPS_SHADOW_PERCENT": "30",
    "MLOPS_CANARY_SECONDS": "300",
    "MLOPS_CANARY_PERCENT": "10",
}


def _traffic(deps: FakeDeps, answers: list[tuple[float, float]], same_ids: bool = True) -> None:
    """Requests production answered live and the shadow answered as mirrored copies, one row each."""
    at = deps.clock() + timedelta(seconds=1)
    for i, (live, shadow) in enumerate(answers):
        row = {"x1": float(i), "x2": 2.0 * i}
        serve(deps, "model-v1", f"req-{i}", [row], [live], at)
        copy = f"req-{i}" if same_ids else f"copy-{i}"  # Azure may give the copy an id of its own
        serve(deps, "model-v2", copy, [row], [shadow], at, mirrored=True)


def _rolled_back(deps: FakeDeps, rid: str) -> bool:
    """A shadow's rollback takes two looks, as on Azure: its mirroring ends, then its deployment goes."""
    assert advance(rid, deps, "reconcile") == "rolling_back"
    assert deps.endpoints.mirror_traffic() == {} and deps.endpoints.deployment("model-v2") is not None
    return advance(rid, deps, "reconcile") == "rolled_back"


def _step(deps: FakeDeps, status: str) -> dict:
    [entered] = [e for e in actions(deps, f"release.{status}") if e.subject.endswith("-v2")]
    return entered.detail


def test_with_production_a_new_model_is_first_a_shadow_then_a_canary() -> None:
    deps = make_deps(**SHADOW)
    rid = second_release(deps)

    assert advance(rid, deps, "reconcile") == "shadow"
    assert deps.endpoints.mirror_traffic() == {"model-v2": 30}
    assert deps.endpoints.traffic() == {"model-v1": 100, "model-v2": 0}  # no client sees its answers

    _traffic(deps, [(10.0 + i, 10.2 + i) for i in range(8)])
    deps.endpoints.set_mirror_stats("model-v2", requests=8, errors=0, p95_ms=35)
    deps.clock.advance(120)
    assert advance(rid, deps, "reconcile") == "shadow"  # still baking

    deps.clock.advance(200)
    assert advance(rid, deps, "reconcile") == "canary"
    assert deps.endpoints.mirror_traffic() == {}  # live traffic ends its mirroring
    assert deps.endpoints.traffic() == {"model-v1": 90, "model-v2": 10}
    shadow = _step(deps, "canary")["shadow"]
    assert shadow["pairs"] == 8 and shadow["unmatched"] == 0
    assert shadow["mean_abs_difference"] == 0.2
    assert 0 < shadow["relative_difference"] < 0.02
    assert shadow["mirror"]["requests"] == 8
    assert deps.audit.verify() == []


def test_a_shadow_that_disagrees_with_production_is_rolled_back_before_its_canary() -> None:
    deps = make_deps(**SHADOW, MLOPS_SHADOW_MAX_DIFFERENCE="0.1")
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "shadow"
    _traffic(deps, [(10.0, 25.0)] * 6, same_ids=False)  # paired by the input rows themselves
    deps.endpoints.set_mirror_stats("model-v2", requests=6, p95_ms=20)
    deps.clock.advance(30)

    assert _rolled_back(deps, rid)  # at once, not after the bake

    assert deps.endpoints.deployment("model-v2") is None and deps.endpoints.mirror_traffic() == {}
    assert deps.endpoints.traffic() == {"model-v1": 100}
    assert production_state(deps)["version"] == "1"
    rolling = _step(deps, "rolling_back")
    assert "mean absolute difference from production 15" in rolling["reason"]
    assert rolling["shadow"]["pairs"] == 6


def test_a_classifier_shadow_is_judged_on_the_share_of_equal_answers() -> None:
    deps = make_deps(**SHADOW, MLOPS_SHADOW_MIN_AGREEMENT="0.9")
    rid = second_release(deps)
    training = dataclasses.replace(deps.settings.training, task="binary")  # the fakes train a regressor
    deps.settings = dataclasses.replace(deps.settings, training=training)
    assert advance(rid, deps, "reconcile") == "shadow"
    _traffic(deps, [(1, 1), (0, 0), (1, 0), (1, 1), (0, 1), (1, 1), (0, 0), (1, 1), (0, 0), (1, 1)])
    deps.endpoints.set_mirror_stats("model-v2", requests=10, p95_ms=20)

    assert _rolled_back(deps, rid)
    assert "agrees with production on 80.0% of 10 rows, below 90.0%" in _step(deps, "rolling_back")["reason"]


def test_mirrored_copies_that_err_or_are_slow_end_the_shadow() -> None:
    deps = make_deps(**SHADOW, MLOPS_CANARY_MAX_ERROR_RATE="0.05", MLOPS_LATENCY_SLO_MS="200")
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "shadow"
    deps.endpoints.set_mirror_stats("model-v2", requests=40, errors=6, p95_ms=950)

    assert _rolled_back(deps, rid)
    reason = _step(deps, "rolling_back")["reason"]
    assert "mirrored error rate 15.0%" in reason and "p95 latency 950 ms" in reason


def test_a_shadow_without_enough_mirrored_requests_by_its_deadline_is_rolled_back() -> None:
    deps = make_deps(**SHADOW)
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "shadow"
    _traffic(deps, [(1.0, 1.0)] * 2)
    deps.endpoints.set_mirror_stats("model-v2", requests=2, p95_ms=20)
    deps.clock.advance(400)
    assert advance(rid, deps, "reconcile") == "shadow"  # baked, but on too little: it waits for more

    deps.clock.advance(600)
    assert _rolled_back(deps, rid)
    assert "fewer than the 5 required (MLOPS_SHADOW_MIN_REQUESTS)" in _step(deps, "rolling_back")["reason"]


def test_metrics_that_do_not_tell_copies_apart_count_all_of_a_shadows_requests() -> None:
    """Azure Monitor counts a deployment's requests without saying which were mirrored; a shadow has no live
    traffic, so its requests are its copies (less the smoke test's, which may share the first minute)."""
    deps = make_deps(**{**SHADOW, "MLOPS_SHADOW_SECONDS": "60"})
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "shadow"
    _traffic(deps, [(5.0, 5.0)] * 6)
    deps.endpoints.set_stats("model-v2", requests=14, p95_ms=30)  # 8 of them the smoke test and warm-up
    deps.clock.advance(61)

    assert advance(rid, deps, "reconcile") == "canary"
    mirror = _step(deps, "canary")["shadow"]["mirror"]
    assert mirror["requests"] == 6 and mirror["probes_excluded"] == 8


def test_without_a_production_model_there_is_no_shadow() -> None:
    from tests.builders import deploy, train

    deps = make_deps(**SHADOW)
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")

    assert advance(rid, deps, "reconcile") == "production"
    assert deps.endpoints.mirror_traffic() == {}


def test_captured_traffic_that_cannot_be_read_is_no_evidence_and_the_deadline_ends_the_shadow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.handlers import release_shadow

    def unavailable(*args: object, **kwargs: object) -> None:
        raise OSError("storage unavailable")

    deps = make_deps(**SHADOW)
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "shadow"
    deps.endpoints.set_mirror_stats("model-v2", requests=50, p95_ms=20)
    monkeypatch.setattr(release_shadow.traffic, "served_rows", unavailable)
    deps.clock.advance(400)
    assert advance(rid, deps, "reconcile") == "shadow"  # baked, but nothing paired: it waits

    deps.clock.advance(600)
    assert _rolled_back(deps, rid)
    rolling = _step(deps, "rolling_back")
    assert "0 rows paired" in rolling["reason"] and "storage unavailable" in rolling["shadow"]["problem"]


def test_a_shadow_rolled_back_by_hand_ends_its_mirroring_then_goes() -> None:
    from shared.handlers.release import roll_back

    deps = make_deps(**SHADOW)
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "shadow"

    assert roll_back(rid, "alice", "not today", deps) == (200, f"release {rid} rolled back by alice")
    assert deps.endpoints.mirror_traffic() == {}
    assert advance(rid, deps, "reconcile") == "rolled_back"
    assert deps.endpoints.deployment("model-v2") is None
    assert deps.endpoints.traffic() == {"model-v1": 100}
    assert production_state(deps)["version"] == "1"


def test_a_shadow_is_judged_only_on_enough_evidence() -> None:
    deps = make_deps(**SHADOW, MLOPS_SHADOW_MAX_DIFFERENCE="0.1")
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "shadow"
    _traffic(deps, [(10.0, 30.0)] * 3)  # far off, but three rows are no evidence yet (5 required)
    deps.endpoints.set_mirror_stats("model-v2", requests=3, errors=1, p95_ms=20)

    assert advance(rid, deps, "reconcile") == "shadow"


def test_a_shadows_unmarked_copies_are_nobodys_answers_for_late_labels() -> None:
    """Azure's collector does not mark mirrored copies: rows a deployment answered while it was a shadow are
    not what late labels are matched to, even when production's own answer to that request is not there."""
    from shared.handlers.labels import match

    deps = make_deps(**SHADOW)
    rid = second_release(deps)
    assert advance(rid, deps, "reconcile") == "shadow"
    at = deps.clock() + timedelta(seconds=1)
    serve(deps, "model-v1", "req-live", [{"x1": 1.0, "x2": 0.0}], [1.0], at)
    serve(deps, "model-v2", "req-live", [{"x1": 1.0, "x2": 0.0}], [1.0], at)  # its copy, unmarked
    serve(deps, "model-v2", "req-copy-only", [{"x1": 2.0, "x2": 0.0}], [1.0], at)

    found = match(deps, {"req-live": 1.0, "req-copy-only": 2.0}, deps.clock() + timedelta(seconds=5))

    assert (found.matched, found.unmatched) == (1, 1)
    assert {deployment for deployment, _ in found.by_hour} == {"model-v1"}
