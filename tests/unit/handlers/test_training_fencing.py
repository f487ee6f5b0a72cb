"""A slow worker whose lease expires mid-run never registers the run a second time, and should two
registrations of one run still race, only the version the run record names (the lowest) is released."""

from __future__ import annotations

import threading

import pytest

from shared.handlers import reconcile as reconciliation
from shared.handlers.release import on_model_registered, release_id
from shared.handlers.training import lineage_tags, on_run_completed
from shared.state import keys
from shared.state.lease import LEASE_SECONDS, LeaseLost
from shared.testing import invariants
from tests.builders import (
    MODEL,
    actions,
    evaluation,
    good_csv,
    land,
    run_completed,
    run_state,
    start_after_quiet_period,
)
from tests.fakes import FakeDeps, make_deps


def _finished_run(deps: FakeDeps) -> str:
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    assert run_id is not None
    deps.jobs.complete(run_id, evaluation())
    return run_id


def test_a_worker_whose_lease_expired_while_it_was_slow_registers_nothing() -> None:
    deps = make_deps()
    run_id = _finished_run(deps)
    other_in_registration = threading.Event()
    slow_worker_done = threading.Event()

    def other_registers_slowly() -> None:  # the second worker, between its registry look-up and its create
        other_in_registration.set()
        slow_worker_done.wait(5)

    deps.registry.before_once("create", other_registers_slowly)
    redelivery = threading.Thread(
        target=on_run_completed, args=(run_completed(deps, run_id, event_id="evt-redelivered"), deps)
    )

    def results_take_too_long() -> None:  # the first worker's lease expires; Event Grid redelivers meanwhile
        deps.clock.advance(LEASE_SECONDS + 1)
        redelivery.start()
        assert other_in_registration.wait(5)

    deps.jobs.before_once("results", results_take_too_long)
    try:
        with pytest.raises(LeaseLost):
            on_run_completed(run_completed(deps, run_id, event_id="evt-first"), deps)
    finally:
        slow_worker_done.set()
        redelivery.join(5)

    assert len(deps.registry.models[MODEL]) == 1  # the slow worker stopped before registering
    assert run_state(deps, run_id)["model_version"] == "1"
    assert len(actions(deps, "model.registered")) == 1
    assert invariants.check(deps, settled=False) == []


def test_when_two_registrations_race_the_run_names_the_lowest_version_and_only_it_is_released() -> None:
    deps = make_deps()
    run_id = _finished_run(deps)
    results = deps.jobs.results(run_id)

    def a_stale_worker_registers_first() -> None:  # between this worker's look-up and its create
        run = deps.state.get(keys.run(run_id)).record
        deps.registry.register(
            MODEL, results, lineage_tags(run, results.evaluation, {"verdicts": []}, "evt-x")
        )

    deps.registry.before_once("create", a_stale_worker_registers_first)
    on_run_completed(run_completed(deps, run_id), deps)

    first, second = deps.registry.run_versions(MODEL, run_id)
    assert (first.version, second.version) == ("1", "2")
    assert run_state(deps, run_id)["model_version"] == "1"
    assert deps.registry.find_by_run(MODEL, run_id) == first
    assert f"{run_id}: registered 2 times (versions 1, 2)" in invariants.check(deps, settled=False)

    for announced in reversed(deps.registry.announced):  # the duplicate's event may well come first
        on_model_registered(announced, deps)

    assert deps.state.exists(keys.release(release_id(MODEL, "1")))
    assert not deps.state.exists(keys.release(release_id(MODEL, "2")))
    [ignored] = actions(deps, "event.ignored")
    assert ignored.subject == f"{MODEL}:2"
    assert "names version 1" in ignored.detail["reason"]


def test_a_version_its_run_has_not_named_yet_is_released_once_the_run_names_it() -> None:
    deps = make_deps()
    run_id = _finished_run(deps)
    results = deps.jobs.results(run_id)
    run = deps.state.get(keys.run(run_id)).record
    # A worker registered the model and died before writing the run record.
    model = deps.registry.register(
        MODEL, results, lineage_tags(run, results.evaluation, {"verdicts": []}, "e")
    )

    on_model_registered(deps.registry.announcement(model), deps)

    assert not deps.state.exists(keys.release(release_id(MODEL, model.version)))
    [ignored] = actions(deps, "event.ignored")
    assert "names no model version yet" in ignored.detail["reason"]

    deps.clock.advance(31)
    reconciliation.reconcile(
        deps
    )  # the completion is chased; the registered version is reused, then released

    assert run_state(deps, run_id)["model_version"] == model.version
    assert len(deps.registry.models[MODEL]) == 1
    assert deps.state.exists(keys.release(release_id(MODEL, model.version)))
