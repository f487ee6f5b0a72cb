"""The handlers end to end on fakes: data lands, training starts, runs are gated and registered, releases reach
production, drift asks for training. Assertions are on state a user sees: blobs, documents, audit entries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.messages import (
    BLOB_CREATED,
    DRIFT_DETECTED,
    RUN_COMPLETED,
    BlobCreated,
    DriftDetected,
    RunCompleted,
    envelope_of,
    typed,
)
from shared.handlers import reconcile as reconciliation
from shared.handlers.data import on_blob_created
from shared.handlers.drift import on_drift_detected
from shared.handlers.release import advance, decide_approval, on_model_registered, release_id, roll_back
from shared.handlers.training import PRODUCTION_KEY, on_run_completed, start_training_if_due
from shared.ports import ModelVersion
from shared.state.requests import catalog_entry, open_request
from tests.fakes import FakeDeps, make_deps

MODEL = "mlops-model"


# --- helpers --------------------------------------------------------------------------------------------------


def good_csv(rows: int = 20, offset: int = 0) -> bytes:
    lines = ["x1,x2,target", *(f"{i + offset},{(i * 7) % 5},{2.0 * (i + offset) + 1}" for i in range(rows))]
    return ("\n".join(lines) + "\n").encode()


def land(
    deps: FakeDeps, name: str, data: bytes, event_id: str | None = None, container: str = "landing"
) -> BlobCreated:
    """Put a blob where a user would, and deliver the BlobCreated event storage would send."""
    etag = deps.blobs.write(container, name, data)
    message = typed(
        envelope_of(
            id=event_id or f"evt-{name}",
            event_type=BLOB_CREATED,
            topic=deps.settings.topics.storage,
            subject=f"/blobServices/default/containers/{container}/blobs/{name}",
            data={"url": f"memory://{container}/{name}", "eTag": etag, "contentLength": len(data)},
            time=deps.clock(),
        )
    )
    assert isinstance(message, BlobCreated)
    on_blob_created(message, deps)
    return message


def run_completed(
    deps: FakeDeps, run_id: str, status: str = "completed", event_id: str = "evt-done"
) -> RunCompleted:
    message = typed(
        envelope_of(
            id=event_id,
            event_type=RUN_COMPLETED,
            topic=deps.settings.topics.workspace,
            subject=f"experiments/e/runs/{run_id}",
            data={"runId": run_id, "runStatus": status, "experimentName": "mlops"},
            time=deps.clock(),
        )
    )
    assert isinstance(message, RunCompleted)
    return message


def drift_detected(deps: FakeDeps, event_id: str = "evt-drift") -> DriftDetected:
    message = typed(
        envelope_of(
            id=event_id,
            event_type=DRIFT_DETECTED,
            topic=deps.settings.topics.custom,
            subject=f"models/{MODEL}/versions/1",
            data={
                "modelName": MODEL,
                "modelVersion": "1",
                "driftShare": 0.75,
                "driftedColumns": ["x1"],
                "reportUrl": "memory://reports/drift.json",
            },
            time=deps.clock(),
        )
    )
    assert isinstance(message, DriftDetected)
    return message


def evaluation(
    r2: float = 0.9, rmse: float = 3.0, champion: dict[str, float] | None = None
) -> dict[str, Any]:
    return {
        "primary_metric": "rmse",
        "greater_is_better": False,
        "challenger": {"r2": r2, "rmse": rmse, "mae": rmse / 2},
        "champion": champion,
    }


def actions(deps: FakeDeps, action: str | None = None) -> list[Any]:
    entries = deps.audit.entries()
    if action is None:
        return [e.action for e in entries]
    return [e for e in entries if e.action == action]


def state(deps: FakeDeps, key: str) -> dict[str, Any] | None:
    document = deps.state.get(key)
    return None if document is None else document.body


def start_after_quiet_period(deps: FakeDeps) -> str | None:
    deps.clock.advance(deps.settings.runs.quiet_period_seconds + 1)
    return start_training_if_due(deps)


def train(
    deps: FakeDeps, data: bytes | None = None, name: str = "batch-1.csv", **metrics: Any
) -> ModelVersion:
    """Land a file, run training and complete it; returns the registered model version."""
    land(deps, name, data or good_csv())
    run_id = start_after_quiet_period(deps)
    assert run_id is not None
    deps.jobs.complete(run_id, evaluation(**metrics))
    on_run_completed(run_completed(deps, run_id, event_id=f"evt-done-{run_id}"), deps)
    model = deps.registry.find_by_run(MODEL, run_id)
    assert model is not None
    return model


def deploy(deps: FakeDeps, model: ModelVersion) -> str:
    """Deliver the registry's ModelRegistered for `model`; returns the release id."""
    on_model_registered(deps.registry.announcement(model), deps)
    return release_id(model.name, model.version)


def release_status(deps: FakeDeps, rid: str) -> str:
    body = state(deps, f"releases/{rid}")
    assert body is not None
    return body["status"]


# --- data landing ---------------------------------------------------------------------------------------------


def test_a_good_file_is_accepted_stored_by_hash_catalogued_and_asks_for_training() -> None:
    deps = make_deps()
    data = good_csv()

    land(deps, "batch-1.csv", data, event_id="evt-1")

    [accepted] = actions(deps, "file.accepted")
    sha = accepted.detail["sha256"]
    assert accepted.subject == "batch-1.csv" and accepted.detail["rows"] == 20
    assert deps.blobs.read("datasets", f"files/{sha}.csv").data == data
    entry = catalog_entry(deps, sha)
    assert entry is not None and entry["name"] == "batch-1.csv"
    assert state(deps, "datasets/schema")["columns"] == {"x1": "number", "x2": "number", "target": "number"}
    request = open_request(deps)
    assert request is not None
    assert (request["causes"], request["events"]) == (["data"], ["evt-1"])
    assert deps.blobs.names("landing") == ["batch-1.csv"]  # accepted files stay where the user put them
    assert deps.audit.verify() == []


def test_the_same_event_delivered_twice_asks_for_training_once() -> None:
    deps = make_deps()
    message = land(deps, "batch-1.csv", good_csv(), event_id="evt-1")

    on_blob_created(message, deps)

    assert len(actions(deps, "training.requested")) == 1
    assert len(actions(deps, "file.accepted")) == 1
    assert open_request(deps)["events"] == ["evt-1"]
    assert deps.audit.verify() == []


def test_a_bad_file_is_quarantined_with_its_reasons_and_removed_from_landing() -> None:
    deps = make_deps()
    data = b"x1,x2\n1,2\n"

    land(deps, "bad.csv", data, event_id="evt-bad")

    assert deps.blobs.names("landing") == []
    assert deps.blobs.names("quarantine") == ["bad.csv", "bad.csv.reason.json"]
    assert deps.blobs.read("quarantine", "bad.csv").data == data
    reason = json.loads(deps.blobs.text("quarantine", "bad.csv.reason.json"))
    assert reason["event_id"] == "evt-bad"
    assert reason["reasons"] == [
        "target column 'target' is missing",
        "file has 1 rows, fewer than the minimum of 10",
    ]
    [quarantined] = actions(deps, "file.quarantined")
    assert quarantined.subject == "bad.csv"
    assert quarantined.detail["reasons"] == reason["reasons"]
    assert open_request(deps) is None  # nothing to train on
    assert deps.blobs.names("datasets") == []
    assert deps.audit.verify() == []


def test_a_redelivered_event_for_a_quarantined_file_changes_nothing() -> None:
    deps = make_deps()
    message = land(deps, "bad.csv", b"nonsense\n", event_id="evt-bad")
    before = actions(deps)

    on_blob_created(message, deps)

    assert actions(deps) == before
    assert deps.blobs.names("quarantine") == ["bad.csv", "bad.csv.reason.json"]


def test_a_file_that_breaks_the_learned_schema_is_quarantined() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())

    land(deps, "batch-2.csv", b"x1,target\n" + b"".join(f"{i},{i}\n".encode() for i in range(20)))

    [quarantined] = actions(deps, "file.quarantined")
    assert quarantined.detail["reasons"] == ["missing columns: x2"]


def test_a_file_in_another_container_is_ignored() -> None:
    deps = make_deps()

    land(deps, "report.csv", good_csv(), container="reports")

    [ignored] = actions(deps, "event.ignored")
    assert "not the landing container" in ignored.detail["reason"]
    assert deps.blobs.names("reports") == ["report.csv"]
    assert deps.blobs.names("quarantine") == []
    assert open_request(deps) is None


# --- starting training ----------------------------------------------------------------------------------------


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
    run = state(deps, f"runs/{run_id}")
    assert run is not None and run["status"] == "running"
    assert run["request"]["events"] == ["evt-0", "evt-1", "evt-2"]
    assert open_request(deps) is None  # the request was consumed by the run
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

    assert state(deps, f"runs/{run_id}")["request"]["events"] == ["evt-1"]
    request = open_request(deps)
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
    assert "was already trained on" in waiting.detail["reason"]
    assert waiting.detail["causes"] == ["drift"]
    assert open_request(deps) is not None  # kept open for the next new data
    assert deps.audit.verify() == []


def test_a_scheduled_retrain_without_data_waits() -> None:
    deps = make_deps()

    reconciliation.scheduled_retrain(deps, tick_id="schedule-1")
    assert start_after_quiet_period(deps) is None

    [waiting] = actions(deps, "training.waiting")
    assert waiting.detail["reason"] == "no accepted data yet"
    assert deps.jobs.submitted == {}


# --- runs completing ------------------------------------------------------------------------------------------


def test_a_failed_run_is_marked_failed_and_registers_nothing() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)

    on_run_completed(run_completed(deps, run_id, status="failed"), deps)

    run = state(deps, f"runs/{run_id}")
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

    run = state(deps, f"runs/{run_id}")
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
    run = state(deps, f"runs/{run_id}")
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

    assert state(deps, f"runs/{run_id}")["status"] == "rejected"
    [rejected] = actions(deps, "challenger.rejected")
    assert "not better" in rejected.detail["reasons"][0]


def test_reconcile_chases_a_run_whose_completion_event_never_came() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation())
    deps.clock.advance(31)

    reconciliation.reconcile(deps)

    assert state(deps, f"runs/{run_id}")["status"] == "registered"
    assert len(deps.registry.announced) == 1


def test_reconcile_fails_a_run_the_backend_lost() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    deps.jobs.statuses.pop(run_id)

    reconciliation.reconcile(deps)

    assert state(deps, f"runs/{run_id}")["status"] == "failed"
    [timed_out] = actions(deps, "run.timed_out")
    assert timed_out.detail["backend_status"] == "NotFound"


# --- releases -------------------------------------------------------------------------------------------------


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
    production = state(deps, PRODUCTION_KEY)
    assert production is not None
    assert (production["model"], production["version"], production["deployment"]) == (MODEL, "1", "model-v1")
    assert production["previous"] is None
    payloads = deps.endpoints.payloads  # one request per row, as clients send them
    assert len(payloads) == deps.settings.release.smoke_test_rows
    assert all(
        p["input_data"]["columns"] == ["x1", "x2"] for p in payloads
    )  # features only, never the target
    history = [step["status"] for step in state(deps, f"releases/{rid}")["history"]]
    assert history == ["deploying", "smoke_testing", "approved", "promoting", "production"]
    assert actions(deps)[-1] == "release.promoted"
    assert deps.audit.verify() == []


def test_reconcile_advances_an_active_release() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")

    result = reconciliation.reconcile(deps)

    assert result["releases"] == {rid: "production"}


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
    assert state(deps, PRODUCTION_KEY)["previous"]["version"] == "1"
    assert release_status(deps, release_id(MODEL, "1")) == "superseded"
    assert deps.audit.verify() == []


def test_with_approval_required_a_release_waits_for_an_approver() -> None:
    deps = make_deps(MLOPS_REQUIRE_APPROVAL="true")
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")

    assert advance(rid, deps, "reconcile") == "awaiting_approval"
    assert advance(rid, deps, "reconcile") == "awaiting_approval"
    assert state(deps, PRODUCTION_KEY) is None
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
    assert state(deps, PRODUCTION_KEY) is None


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
    assert state(deps, PRODUCTION_KEY) is None
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


def test_promotion_interrupted_after_switching_traffic_completes_on_the_next_tick() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    deps.endpoints.fail_once("deployments", ConnectionError("endpoint API unavailable"))
    with pytest.raises(ConnectionError):
        advance(rid, deps, "reconcile")

    reconciliation.reconcile(deps)

    assert release_status(deps, rid) == "production"
    assert state(deps, PRODUCTION_KEY)["previous"] is None


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


def test_a_run_whose_results_cannot_be_read_does_not_stop_reconcile() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    land(deps, "batch-2.csv", good_csv(offset=100))
    run_id = start_after_quiet_period(deps)
    deps.jobs.statuses[run_id] = "Completed"  # but its evaluation was never written
    deps.clock.advance(deps.settings.runs.timeout_seconds + 1)

    reconciliation.reconcile(deps)

    assert release_status(deps, rid) == "production"
    assert state(deps, f"runs/{run_id}")["status"] == "failed"


# --- drift ----------------------------------------------------------------------------------------------------


def test_drift_detected_asks_for_training_with_cause_drift() -> None:
    deps = make_deps()

    on_drift_detected(drift_detected(deps, event_id="evt-drift"), deps)

    request = open_request(deps)
    assert request is not None
    assert (request["causes"], request["events"]) == (["drift"], ["evt-drift"])
    assert request["details"][0]["drifted_columns"] == ["x1"]
    [requested] = actions(deps, "training.requested")
    assert requested.detail["cause"] == "drift"
    assert requested.detail["drift_share"] == 0.75
    assert deps.audit.verify() == []


def test_drift_with_new_data_trains_on_the_new_data() -> None:
    deps = make_deps()
    train(deps)
    on_drift_detected(drift_detected(deps), deps)
    land(deps, "batch-2.csv", good_csv(offset=100), event_id="evt-new")

    run_id = start_after_quiet_period(deps)

    assert run_id is not None
    assert state(deps, f"runs/{run_id}")["request"]["causes"] == ["data", "drift"]
    assert deps.audit.verify() == []


def test_the_whole_loop_leaves_an_intact_audit_chain() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    reconciliation.reconcile(deps)

    assert release_status(deps, rid) == "production"
    assert actions(deps) == [
        "schema.learned",
        "file.accepted",
        "training.requested",
        "training.started",
        "model.registered",
        "deployment.started",
        "release.smoke_testing",
        "release.approved",
        "release.promoting",
        "release.promoted",
    ]
    assert deps.audit.verify() == []


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

    assert state(deps, f"runs/{run_id}")["status"] == "rejected"
    [rejected] = actions(deps, "challenger.rejected")
    assert any("signific" in reason for reason in rejected.detail["reasons"])
    assert deps.registry.find_by_run(MODEL, run_id) is None


# --- canary, approval expiry, rollback -----------------------------------------------------------------------


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
    assert state(deps, PRODUCTION_KEY)["version"] == "1"
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
    assert state(deps, PRODUCTION_KEY)["version"] == "1"
    assert deps.endpoints.traffic() == {"model-v1": 100}
    [entry] = actions(deps, "release.rolled_back")
    assert entry.detail["requested_by"] == "alice@example.com"
    again, message = roll_back(rid, "alice@example.com", "", deps)
    assert again == 409
