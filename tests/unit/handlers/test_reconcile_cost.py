"""What a reconcile tick reads: a page of landing, the index of open work and a share of the catalog, never the
whole history; and what it still finds that way (lost events, crashed workers, deletions)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.handlers import reconcile as reconciliation
from shared.handlers.data import on_blob_created
from shared.state import keys
from shared.state.lease import LEASE_SECONDS
from shared.state.records import FileStatus
from shared.state.store import encode
from shared.testing import faults
from shared.testing.counting import CountingBlobStore
from tests.builders import (
    actions,
    blob_created,
    evaluation,
    good_csv,
    land,
    run_state,
    start_after_quiet_period,
)
from tests.fakes import FakeDeps, InMemoryBlobStore, make_deps


def _status(deps: FakeDeps) -> dict[str, FileStatus]:
    return {s.record.blob: s.record.status for s in deps.state.list(keys.FILES)}


def _tick(deps: FakeDeps, seconds: float = 60) -> None:
    reconciliation.reconcile(deps)
    deps.clock.advance(seconds)


def test_lost_events_are_found_a_page_per_tick_and_old_blobs_are_not_looked_at_again() -> None:
    inner = InMemoryBlobStore()
    counting = CountingBlobStore(inner)
    deps = make_deps(counting, MLOPS_SWEEP_PAGE="2")
    inner._clock = deps.clock
    for n in range(5):
        deps.blobs.write("landing", f"lost-{n}.csv", good_csv(offset=100 * n))  # no BlobCreated came
    for expected in (2, 4, 5):
        _tick(deps)
        assert len(_status(deps)) == expected  # one page of two blobs per tick

    deps.blobs.write("landing", "late.csv", good_csv(offset=900))
    for _ in range(6):  # two passes of three ticks, ten minutes apart (beyond the allowance for clock skew)
        _tick(deps, 600)
    assert _status(deps)["late.csv"] is FileStatus.ACCEPTED

    counting.reset()
    _tick(deps)
    counts = counting.reset()
    assert counts[("info", "state/files")] == 0  # nothing changed since the pass before: nothing looked up
    # one page for the sweep, one for the retraction check (which asks name by name when landing has more)
    assert counts[("list", "landing")] == 2 and counts[("listed", "landing")] <= 2 * 2


def test_a_page_that_failed_is_listed_again() -> None:
    deps = make_deps()
    deps.blobs.write("landing", "a.csv", good_csv())
    deps.blobs.write("landing", "b.csv", good_csv(offset=100))
    deps.blobs.fail_once("open", ConnectionError("storage hiccup"))
    with pytest.raises(RuntimeError, match="landing"):
        _tick(deps)
    deps.clock.advance(3600)  # long after: the page is not skipped for being old
    _tick(deps)
    assert _status(deps) == {"a.csv": FileStatus.ACCEPTED, "b.csv": FileStatus.ACCEPTED}


def test_a_deletion_whose_event_was_lost_is_retracted_within_a_pass_over_the_catalog() -> None:
    deps = make_deps(MLOPS_RETRACTION_CHECKS="2")
    for n in range(5):
        land(deps, f"batch-{n}.csv", good_csv(offset=100 * n))
    deps.blobs.delete("landing", "batch-3.csv")  # its BlobDeleted was lost
    for _ in range(3):  # five entries, two a tick
        _tick(deps)
    [retracted] = actions(deps, "file.retracted")
    assert retracted.subject == "batch-3.csv" and retracted.detail["reason"] == "deleted"


def test_a_registered_run_leaves_the_open_work_once_its_release_exists() -> None:
    deps = make_deps()
    land(deps, "batch-1.csv", good_csv())
    run_id = start_after_quiet_period(deps)
    deps.jobs.complete(run_id, evaluation())
    deps.clock.advance(31)
    _tick(deps)  # the completion event was lost: the tick registers the model
    assert run_state(deps, run_id)["status"] == "registered"
    _tick(deps)

    assert [s.record.version for s in deps.state.list(keys.RELEASES)] == ["1"]
    assert [s.key.path for s in deps.state.open(keys.RUNS)] == []


def _crash_accepting(deps: FakeDeps, name: str) -> None:
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


def test_a_file_left_half_done_before_the_index_existed_is_finished_after_the_upgrade() -> None:
    deps = make_deps()
    _crash_accepting(deps, "a.csv")
    [half] = deps.state.list(keys.FILES)
    deps.blobs.write(
        deps.settings.containers.state, f"{half.key.path}.json", encode(half)
    )  # untagged, as before
    assert list(deps.state.open(keys.FILES)) == []
    deps.clock.advance(LEASE_SECONDS + 1)

    _tick(deps)

    assert _status(deps) == {"a.csv": FileStatus.ACCEPTED}
    assert deps.state.exists(keys.sweep("index"))
