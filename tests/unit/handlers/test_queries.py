"""The read-only answers on fakes: what is in production and why, and each model version's lineage."""

from __future__ import annotations

import pytest

from shared.handlers.queries import lineage, status
from shared.handlers.release import advance
from tests.builders import MODEL, deploy, good_csv, land, start_after_quiet_period, train
from tests.fakes import make_deps


def test_status_says_what_serves_what_waits_and_what_was_decided_last() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    advance(rid, deps, "reconcile")
    land(deps, "batch-2.csv", good_csv(offset=100), event_id="evt-2")

    answer = status(deps)

    assert answer["model"] == MODEL
    assert answer["production"]["version"] == "1" and answer["production"]["deployment"] == "model-v1"
    assert answer["traffic"] == {"model-v1": 100}
    assert answer["training_request"]["events"] == ["evt-2"]
    assert answer["runs_in_flight"] == [] and answer["active_releases"] == []
    assert [d["action"] for d in answer["recent_decisions"]][-1] == "file.accepted"
    assert len(answer["recent_decisions"]) == 10


def test_status_of_a_fresh_system_is_empty_not_an_error() -> None:
    answer = status(make_deps())

    assert (answer["production"], answer["training_request"], answer["traffic"]) == (None, None, {})


def test_lineage_follows_a_model_back_to_its_files_causes_and_decisions() -> None:
    deps = make_deps(MLOPS_CANARY_SECONDS="0")
    model = train(deps, name="batch-1.csv")
    rid = deploy(deps, model)
    deps.endpoints.set_state("model-v1", "Succeeded")
    advance(rid, deps, "reconcile")

    found = lineage(MODEL, model.version, deps)

    assert found is not None
    assert found["model"] == f"{MODEL}:1" and [f["name"] for f in found["files"]] == ["batch-1.csv"]
    assert found["causes"] == ["data"] and found["trigger_events"] == ["evt-batch-1.csv"]
    assert found["metrics"]["rmse"] == 3.0 and found["champion"] is None
    assert found["release"]["status"] == "production"
    steps = [(s["action"], s["subject"]) for s in found["steps"]]
    assert ("file.accepted", "batch-1.csv") in steps
    assert ("training.started", found["run_id"]) in steps
    assert ("release.promoted", rid) in steps


def test_lineage_of_an_unknown_version_is_none() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    start_after_quiet_period(deps)

    assert lineage(MODEL, "7", deps) is None


def test_status_names_each_record_set_aside_as_stuck_with_its_last_error() -> None:
    deps = make_deps(MLOPS_MAX_ATTEMPTS="1")
    rid = deploy(deps, train(deps))
    deps.endpoints.fail_once("deployment", ConnectionError("endpoint API unavailable"))
    with pytest.raises(ConnectionError):
        advance(rid, deps, "reconcile")

    [stuck] = status(deps)["stuck"]

    assert stuck["key"] == f"releases/{rid}" and stuck["status"] == "deploying"
    assert "ConnectionError: endpoint API unavailable" in stuck["reason"] and stuck["attempts"] == 1
    assert status(deps)["active_releases"] == []


def test_status_gives_each_release_on_its_way_with_its_status_and_since_when() -> None:
    deps = make_deps(MLOPS_REQUIRE_APPROVAL="true")
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    advance(rid, deps, "reconcile")

    answer = status(deps)

    assert answer["active_releases"] == [rid]
    assert answer["releases"] == [
        {"id": rid, "version": "1", "status": "awaiting_approval", "since": deps.clock().isoformat()}
    ]
