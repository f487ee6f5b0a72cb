"""The reconcile tick on fakes: what it repairs when events were lost or handlers crashed."""

from __future__ import annotations

from typing import Any

import pytest

from shared.handlers import reconcile as reconciliation
from shared.handlers.data import on_blob_created
from shared.handlers.release import advance
from shared.state import keys
from shared.state.lease import LEASE_SECONDS
from shared.state.records import FileStatus
from shared.testing import faults
from tests.builders import (
    MODEL,
    actions,
    blob_created,
    deploy,
    evaluation,
    good_csv,
    land,
    production_state,
    release_status,
    run_state,
    start_after_quiet_period,
    train,
)
from tests.fakes import FakeDeps, make_deps


def test_a_scheduled_retrain_without_data_waits() -> None:
    deps = make_deps()

    reconciliation.scheduled_retrain(deps, tick_id="schedule-1")
    assert start_after_quiet_period(deps) is None

    [waiting] = actions(deps, "training.waiting")
    assert waiting.detail["reason"] == "no accepted data yet"
    assert deps.jobs.submitted == {}


def test_reconcile_chases_a_run_whose_completion_event_never_came() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation())
    deps.clock.advance(31)

    reconciliation.reconcile(deps)

    assert run_state(deps, run_id)["status"] == "registered"
    assert len(deps.registry.announced) == 1


def test_reconcile_fails_a_run_the_backend_lost() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    deps.jobs.statuses.pop(run_id)

    reconciliation.reconcile(deps)

    assert run_state(deps, run_id)["status"] == "failed"
    [timed_out] = actions(deps, "run.timed_out")
    assert timed_out.detail["backend_status"] == "NotFound"


def test_reconcile_advances_an_active_release() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")

    result = reconciliation.reconcile(deps)

    assert result["releases"] == {rid: "production"}


def test_promotion_interrupted_after_switching_traffic_completes_on_the_next_tick() -> None:
    deps = make_deps()
    rid = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    deps.endpoints.fail_once("deployments", ConnectionError("endpoint API unavailable"))
    with pytest.raises(ConnectionError):
        advance(rid, deps, "reconcile")

    reconciliation.reconcile(deps)

    assert release_status(deps, rid) == "production"
    assert production_state(deps)["previous"] is None


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
    assert run_state(deps, run_id)["status"] == "failed"


# --- poison: one item that always fails costs neither the others nor every tick for ever ----------------------


def _crash_accepting(deps: FakeDeps, name: str) -> None:
    """A worker dies right after creating the file's record, before storing the file."""
    write = deps.blobs.write

    def dies_after_the_claim(container: str, blob: str, *args: Any, **kwargs: Any) -> str:
        etag = write(container, blob, *args, **kwargs)
        if container == deps.settings.containers.state and blob.startswith("files/"):
            raise faults.InjectedCrash("the worker died after claiming the file")
        return etag

    deps.blobs.write("landing", name, good_csv())
    deps.blobs.write = dies_after_the_claim  # type: ignore[method-assign]
    with pytest.raises(faults.InjectedCrash):
        on_blob_created(blob_created(deps, name, f"evt-{name}"), deps)
    del deps.blobs.write


def test_a_file_that_can_never_be_finished_does_not_stop_the_files_after_it_and_is_set_aside() -> None:
    deps = make_deps(MLOPS_MAX_ATTEMPTS="3")
    _crash_accepting(deps, "a.csv")
    deps.blobs.write("landing", "a.csv", good_csv(offset=500))  # replaced: the version it claimed is gone
    deps.clock.advance(LEASE_SECONDS + 1)
    [poison] = [s for s in deps.state.list(keys.FILES) if s.record.status is FileStatus.ACCEPTING]

    deps.blobs.write("landing", "b.csv", good_csv(offset=100))  # its BlobCreated was lost
    with pytest.raises(RuntimeError, match=f"files: {poison.key.path}: LookupError"):
        reconciliation.reconcile(deps)
    accepted = {s.record.blob for s in deps.state.list(keys.FILES) if s.record.status is FileStatus.ACCEPTED}
    assert accepted == {"a.csv", "b.csv"}  # b, and a's new version, were handled despite the poison

    with pytest.raises(RuntimeError):  # the third attempt (the crash, then two ticks)
        reconciliation.reconcile(deps)
    reconciliation.reconcile(deps)  # set aside: the tick no longer fails, nor reads its blob again

    stored = deps.state.get(poison.key)
    assert stored is not None and stored.stuck is not None and stored.stuck.attempts == 3
    [stuck] = actions(deps, "record.stuck")
    assert stuck.subject == poison.key.path and "changed or vanished" in stuck.detail["error"]
    assert stuck.detail["status"] == "accepting"


def test_a_release_of_a_version_registered_by_hand_is_set_aside_and_production_keeps_serving() -> None:
    deps = make_deps(MLOPS_MAX_ATTEMPTS="2", MLOPS_CANARY_SECONDS="0")
    deps.endpoints.initial_state = "Succeeded"
    ours = deploy(deps, train(deps))
    assert release_status(deps, ours) == "production"
    results = deps.jobs.complete("by-hand", evaluation())
    by_hand = deps.registry.register(MODEL, results, {})  # none of our tags: no run, no dataset
    with pytest.raises(KeyError):
        deploy(deps, by_hand)

    with pytest.raises(RuntimeError, match=f"releases: releases/{MODEL}-v2"):
        reconciliation.reconcile(deps)
    assert reconciliation.reconcile(deps)["releases"] == {}  # set aside: the tick no longer fails

    [stuck] = actions(deps, "record.stuck")
    assert stuck.subject == f"releases/{MODEL}-v2" and stuck.detail["attempts"] == 2
    assert production_state(deps)["version"] == "1" and deps.endpoints.traffic()["model-v1"] == 100
