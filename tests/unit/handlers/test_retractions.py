"""Files overwritten or deleted in landing leave future dataset versions, on record and with why."""

from __future__ import annotations

import hashlib

from shared.domain.messages import BLOB_DELETED, BlobDeleted
from shared.handlers.reconcile import reconcile
from shared.handlers.retractions import on_blob_deleted
from shared.handlers.training import start_training_if_due
from shared.state import catalog, keys
from shared.state.datasets import load_manifest
from shared.testing import invariants
from tests.builders import _typed, actions, good_csv, land, request_events, train
from tests.fakes import FakeDeps, make_deps


def blob_deleted(deps: FakeDeps, name: str, event_id: str) -> BlobDeleted:
    landing = deps.settings.containers.landing
    return _typed(
        BlobDeleted,
        id=event_id,
        event_type=BLOB_DELETED,
        topic=deps.settings.topics.storage,
        subject=f"/blobServices/default/containers/{landing}/blobs/{name}",
        data={"api": "DeleteBlob", "url": f"memory://{landing}/{name}", "sequencer": "01"},
        time=deps.clock(),
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def next_manifest(deps: FakeDeps) -> dict:
    """The dataset version the next run is started on."""
    deps.clock.advance(deps.settings.runs.quiet_period_seconds + 1)
    run_id = start_training_if_due(deps)
    assert run_id is not None
    run = deps.state.get(keys.run(run_id)).record
    return load_manifest(deps.blobs, deps.settings.containers.datasets, run.dataset_version)


def test_a_file_overwritten_in_landing_leaves_the_next_dataset_version_saying_by_what() -> None:
    deps = make_deps()
    first, second = good_csv(), good_csv(offset=100)
    land(deps, "batch.csv", first)
    land(deps, "batch.csv", second)
    newest = deps.blobs.info("landing", "batch.csv").etag

    manifest = next_manifest(deps)

    assert [f["sha256"] for f in manifest["files"]] == [sha(second)]
    [retracted] = manifest["retracted"]
    assert (retracted["sha256"], retracted["reason"]) == (sha(first), "overwritten")
    assert retracted["why"] == f"batch.csv overwritten by etag {newest}"
    assert retracted["by_etag"] == newest
    [entry] = actions(deps, "file.retracted")
    assert (entry.subject, entry.detail["sha256"], entry.detail["why"]) == (
        "batch.csv",
        sha(first),
        retracted["why"],
    )
    assert invariants.check(deps, settled=False) == []


def test_a_deleted_file_leaves_future_dataset_versions_and_asks_for_training_without_it() -> None:
    deps = make_deps()
    train(deps, good_csv(), "a.csv")
    land(deps, "b.csv", good_csv(offset=50))
    deps.blobs.delete("landing", "a.csv")
    deleted_at = deps.clock().isoformat()

    on_blob_deleted(blob_deleted(deps, "a.csv", "evt-del"), deps)

    entry = catalog.entry(deps.state, sha(good_csv()))
    assert entry.retracted is not None and entry.retracted.reason == "deleted"
    assert entry.retracted.why == f"a.csv deleted at {deleted_at}"
    assert entry.retracted.event_id == "evt-del"
    [audited] = actions(deps, "file.retracted")
    assert audited.detail["event_id"] == "evt-del" and audited.detail["dataset_version"]
    assert f"retracted:{sha(good_csv())}:{entry.etag}" in request_events(deps)
    manifest = next_manifest(deps)
    assert [f["name"] for f in manifest["files"]] == ["b.csv"]
    assert [f["why"] for f in manifest["retracted"]] == [entry.retracted.why]


def test_a_deletion_announced_after_the_name_was_landed_again_retracts_only_the_old_version() -> None:
    deps = make_deps()
    land(deps, "a.csv", good_csv())
    deps.blobs.delete("landing", "a.csv")
    land(deps, "a.csv", good_csv(offset=7))  # landed again before the deletion's event arrived

    on_blob_deleted(blob_deleted(deps, "a.csv", "evt-late"), deps)

    assert catalog.entry(deps.state, sha(good_csv())).retracted is not None
    assert catalog.entry(deps.state, sha(good_csv(offset=7))).retracted is None


def test_the_same_bytes_under_another_name_keep_the_content() -> None:
    deps = make_deps()
    land(deps, "a.csv", good_csv())
    land(deps, "copy-of-a.csv", good_csv())
    deps.blobs.delete("landing", "a.csv")

    on_blob_deleted(blob_deleted(deps, "a.csv", "evt-del"), deps)

    assert catalog.entry(deps.state, sha(good_csv())).retracted is None
    assert actions(deps, "file.retracted") == []


def test_a_lost_deletion_is_retracted_by_the_reconcile_tick_once() -> None:
    deps = make_deps()
    land(deps, "a.csv", good_csv())
    land(deps, "b.csv", good_csv(offset=50))
    deps.blobs.delete("landing", "a.csv")

    reconcile(deps)
    reconcile(deps)

    assert len(actions(deps, "file.retracted")) == 1
    assert catalog.entry(deps.state, sha(good_csv())).retracted.reason == "deleted"
    assert invariants.check(deps, settled=False) == []


def test_the_same_bytes_landed_again_bring_a_retracted_content_back() -> None:
    deps = make_deps()
    land(deps, "a.csv", good_csv())
    deps.blobs.delete("landing", "a.csv")
    on_blob_deleted(blob_deleted(deps, "a.csv", "evt-del"), deps)

    land(deps, "again.csv", good_csv())

    assert catalog.entry(deps.state, sha(good_csv())).retracted is None
    assert [f["name"] for f in next_manifest(deps)["files"]] == ["again.csv"]


def test_a_deletion_in_another_container_is_ignored() -> None:
    deps = make_deps()
    land(deps, "a.csv", good_csv())
    message = blob_deleted(deps, "a.csv", "evt-x")
    other = message.__class__(message.envelope, "reports", "a.csv", message.url, message.sequencer)

    on_blob_deleted(other, deps)

    [ignored] = actions(deps, "event.ignored")
    assert "not the landing container" in ignored.detail["reason"]
    assert catalog.entry(deps.state, sha(good_csv())).retracted is None


def test_a_retracted_file_is_in_its_one_place_and_an_unretracted_vanished_one_is_not() -> None:
    deps = make_deps()
    land(deps, "a.csv", good_csv())
    deps.blobs.delete("landing", "a.csv")

    assert "a.csv: overwritten or deleted in landing but not retracted" in invariants.check(deps)

    reconcile(deps)

    assert invariants.check(deps) == []  # retracted: neither in a dataset version nor lost


def test_a_run_started_after_a_retraction_never_holds_the_retracted_file() -> None:
    deps = make_deps()
    land(deps, "a.csv", good_csv())
    land(deps, "b.csv", good_csv(offset=50))
    deps.blobs.delete("landing", "a.csv")

    manifest = next_manifest(deps)

    assert [f["name"] for f in manifest["files"]] == ["b.csv"]
    assert invariants.check(deps, settled=False) == []
