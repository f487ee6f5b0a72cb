"""Training on fakes: coalesced requests start one run, runs are gated and registered or rejected."""

from __future__ import annotations

import json

from shared.handlers.drift import on_drift_detected
from shared.handlers.release import advance
from shared.handlers.training import on_run_completed, start_training_if_due
from shared.state import keys
from tests.builders import (
    MODEL,
    actions,
    deploy,
    drift_detected,
    evaluation,
    good_csv,
    land,
    request_state,
    run_completed,
    run_state,
    start_after_quiet_period,
    train,
)
from tests.fakes import make_deps


def test_each_file_notes_the_first_dataset_version_it_joined() -> None:
    deps = make_deps()
    for index in range(12):
        land(deps, f"batch-{index}.csv", good_csv(offset=100 * index), event_id=f"evt-{index}")
    first_run = start_after_quiet_period(deps)
    first = deps.jobs.submitted[first_run].manifest
    deps.jobs.complete(first_run, evaluation())
    on_run_completed(run_completed(deps, first_run), deps)
    land(deps, "later.csv", good_csv(offset=5000), event_id="evt-later")
    second = deps.jobs.submitted[start_after_quiet_period(deps)].manifest

    joined = {
        entry.name: entry.dataset_version
        for entry in (stored.record for stored in deps.state.list(keys.CATALOG))
    }
    assert len(second["files"]) == 13
    assert joined == {f"batch-{i}.csv": first["id"] for i in range(12)} | {"later.csv": second["id"]}


def test_training_waits_for_the_quiet_period() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())

    deps.clock.advance(59)
    assert start_training_if_due(deps) is None
    assert deps.jobs.submitted == {}

    deps.clock.advance(1)
    assert start_training_if_due(deps) is not None


def test_a_burst_of_files_starts_exactly_one_run_with_all_of_them() -> None:
    deps = make_deps()
    for index in range(3):
        land(deps, f"batch-{index}.csv", good_csv(offset=100 * index), event_id=f"evt-{index}")
        deps.clock.advance(30)  # each file restarts the quiet period

    assert start_training_if_due(deps) is None
    run_id = start_after_quiet_period(deps)
    assert start_training_if_due(deps) is None

    [job] = deps.jobs.submitted.values()
    assert job.run_id == run_id
    assert sorted(f["name"] for f in job.manifest["files"]) == ["batch-0.csv", "batch-1.csv", "batch-2.csv"]
    assert job.manifest["rows"] == 60
    assert job.dataset_version == job.manifest["id"]
    assert job.config["target"] == "target" and job.config["primary_metric"] == "rmse"
    assert job.champion is None
    saved = json.loads(deps.blobs.text("datasets", f"manifests/{job.dataset_version}.json"))
    assert saved == job.manifest
    run = run_state(deps, run_id)
    assert run is not None and run["status"] == "running"
    assert run["request"]["events"] == ["evt-0", "evt-1", "evt-2"]
    assert request_state(deps) is None  # the request was consumed by the run
    [started] = actions(deps, "training.started")
    assert started.detail["files"] == 3
    assert deps.audit.verify() == []


def test_the_maximum_wait_starts_training_even_while_files_keep_landing() -> None:
    deps = make_deps(MLOPS_MAX_WAIT_SECONDS="120")
    for index in range(5):
        land(deps, f"batch-{index}.csv", good_csv(offset=100 * index), event_id=f"evt-{index}")
        deps.clock.advance(30)

    assert start_training_if_due(deps) is not None


def test_one_run_at_a_time_and_new_data_waits_for_a_follow_up_run() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    first = start_after_quiet_period(deps)
    land(deps, "batch-2.csv", good_csv(offset=100), event_id="evt-late")

    assert start_after_quiet_period(deps) is None  # the first run is still in flight

    deps.jobs.complete(first, evaluation())
    on_run_completed(run_completed(deps, first), deps)
    second = start_training_if_due(deps)
    assert second is not None and second != first
    assert deps.jobs.submitted[second].manifest["rows"] == 40


def test_a_file_landing_while_a_run_starts_stays_open_for_the_next_run() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv(), event_id="evt-1")
    # Another delivery adds to the request between the run's read of it and its deletion.
    deps.blobs.before_once(
        "delete", lambda: land(deps, "batch-2.csv", good_csv(offset=100), event_id="evt-2")
    )

    run_id = start_after_quiet_period(deps)

    assert run_state(deps, run_id)["request"]["events"] == ["evt-1"]
    request = request_state(deps)
    assert request is not None
    assert (request["events"], request["causes"]) == (["evt-2"], ["data"])
    assert deps.audit.verify() == []


def test_the_same_dataset_version_is_never_trained_twice() -> None:
    deps = make_deps()
    train(deps)

    on_drift_detected(drift_detected(deps), deps)
    assert start_after_quiet_period(deps) is None
    assert start_after_quiet_period(deps) is None

    assert len(deps.jobs.submitted) == 1
    [waiting] = actions(deps, "training.waiting")  # recorded once, not on every tick
    assert "was already trained on with this code" in waiting.detail["reason"]
    assert waiting.detail["causes"] == ["drift"]
    assert request_state(deps) is not None  # kept open for the next new data
    assert deps.audit.verify() == []


def test_a_failed_run_is_marked_failed_and_registers_nothing() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)

    on_run_completed(run_completed(deps, run_id, status="failed"), deps)

    run = run_state(deps, run_id)
    assert (run["status"], run["backend_status"]) == ("failed", "Failed")
    assert deps.registry.models == {}
    assert [e.subject for e in actions(deps, "run.failed")] == [run_id]
    assert deps.audit.verify() == []


def test_a_challenger_failing_the_gates_is_rejected_and_not_registered() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation(r2=0.02))

    on_run_completed(run_completed(deps, run_id), deps)

    run = run_state(deps, run_id)
    assert run["status"] == "rejected"
    assert run["gates"]["passed"] is False
    assert deps.registry.models == {}
    assert deps.registry.announced == []
    [rejected] = actions(deps, "challenger.rejected")
    assert rejected.detail["reasons"] == ["r2=0.02 fails r2>=0.1"]
    assert deps.audit.verify() == []


def test_a_challenger_passing_the_gates_is_registered_with_its_lineage() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv(), event_id="evt-file")
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation(r2=0.9, rmse=3.0))

    on_run_completed(run_completed(deps, run_id, event_id="evt-done"), deps)

    [model] = deps.registry.models[MODEL]
    run = run_state(deps, run_id)
    assert (run["status"], run["model_version"]) == ("registered", model.version)
    assert model.version == "1"
    assert model.source == f"memory://runs/{run_id}/model"
    assert model.tags["mlops.run_id"] == run_id
    assert model.tags["mlops.dataset_version"] == run["dataset_version"]
    assert json.loads(model.tags["mlops.trigger_events"]) == ["evt-file"]
    assert model.tags["mlops.run_completed_event"] == "evt-done"
    assert model.tags["mlops.causes"] == "data"
    assert json.loads(model.tags["mlops.metrics"]) == {"r2": 0.9, "rmse": 3.0, "mae": 1.5}
    assert all(isinstance(value, str) for value in model.tags.values())
    assert [m.model_version for m in deps.registry.announced] == ["1"]
    assert [e.subject for e in actions(deps, "model.registered")] == [f"{MODEL}:1"]
    assert deps.audit.verify() == []


def test_a_duplicate_completion_registers_once() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation())
    message = run_completed(deps, run_id)

    on_run_completed(message, deps)
    on_run_completed(message, deps)
    on_run_completed(run_completed(deps, run_id, event_id="evt-other"), deps)

    assert len(deps.registry.models[MODEL]) == 1
    assert len(deps.registry.announced) == 1
    assert len(actions(deps, "model.registered")) == 1
    assert deps.audit.verify() == []


def test_a_completion_for_a_run_this_system_did_not_start_is_ignored() -> None:
    deps = make_deps()

    on_run_completed(run_completed(deps, "someone-elses-run"), deps)

    [ignored] = actions(deps, "event.ignored")
    assert ignored.subject == "someone-elses-run"


def test_a_challenger_is_compared_with_the_champion_in_production() -> None:
    deps = make_deps()
    first = train(deps)
    rid = deploy(deps, first)
    deps.endpoints.set_state(f"model-v{first.version}", "Succeeded")
    advance(rid, deps, "reconcile")

    land(deps, "batch-2.csv", good_csv(offset=100))
    run_id = start_after_quiet_period(deps)
    assert deps.jobs.submitted[run_id].champion == first
    deps.jobs.complete(run_id, evaluation(rmse=3.1, champion={"r2": 0.9, "rmse": 3.0, "mae": 1.5}))
    on_run_completed(run_completed(deps, run_id), deps)

    assert run_state(deps, run_id)["status"] == "rejected"
    [rejected] = actions(deps, "challenger.rejected")
    assert "not better" in rejected.detail["reasons"][0]


def test_a_better_point_estimate_without_significance_is_rejected_with_that_reason() -> None:
    deps = make_deps(MLOPS_REQUIRE_SIGNIFICANCE="true")
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    advance(rid, deps, "reconcile")
    land(deps, "batch-2.csv", good_csv(offset=100))
    run_id = start_after_quiet_period(deps)
    assert run_id is not None
    result = evaluation(rmse=2.9, champion={"r2": 0.9, "rmse": 3.0, "mae": 1.5})
    result["comparison"] = {
        "metric": "rmse",
        "difference": -0.1,
        "ci_low": -0.4,
        "ci_high": 0.2,
        "level": 0.95,
        "p_value": 0.41,
    }
    deps.jobs.complete(run_id, result)

    on_run_completed(run_completed(deps, run_id, event_id="evt-done-2"), deps)

    assert run_state(deps, run_id)["status"] == "rejected"
    [rejected] = actions(deps, "challenger.rejected")
    assert any("signific" in reason for reason in rejected.detail["reasons"])
    assert deps.registry.find_by_run(MODEL, run_id) is None
