"""Optimistic concurrency of state documents and the hash-chained audit log, on the in-memory blob store
(whose ETag rules the integration tests check against Azurite's)."""

from __future__ import annotations

import json

import pytest

from shared.ports import PreconditionFailed
from shared.state.audit import AuditLog
from shared.state.store import StateStore
from tests.fakes import FakeClock, InMemoryBlobStore


@pytest.fixture()
def blobs() -> InMemoryBlobStore:
    store = InMemoryBlobStore()
    store.ensure_containers(["state", "audit", "data"])
    return store


# --- the fake blob store honours the port's conditions ---------------------------------------------------------


def test_every_write_changes_the_etag_and_conditions_follow_it(blobs: InMemoryBlobStore) -> None:
    first = blobs.write("data", "a", b"1")
    second = blobs.write("data", "a", b"2", if_match=first)

    assert first != second
    with pytest.raises(PreconditionFailed):
        blobs.write("data", "a", b"3", if_match=first)
    with pytest.raises(PreconditionFailed):
        blobs.write("data", "a", b"3", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        blobs.write("data", "missing", b"3", if_match=first)
    assert blobs.read("data", "a").data == b"2"


def test_append_creates_extends_and_honours_conditions(blobs: InMemoryBlobStore) -> None:
    created = blobs.append("data", "log", b"a", if_none_match=True)

    with pytest.raises(PreconditionFailed):
        blobs.append("data", "log", b"x", if_none_match=True)
    extended = blobs.append("data", "log", b"b", if_match=created)
    with pytest.raises(PreconditionFailed):
        blobs.append("data", "log", b"x", if_match=created)
    with pytest.raises(PreconditionFailed):
        blobs.append("data", "other", b"x", if_match=extended)
    blobs.append("data", "log", b"c")

    assert blobs.read("data", "log").data == b"abc"


def test_list_by_prefix_and_conditional_delete(blobs: InMemoryBlobStore) -> None:
    etag = blobs.write("data", "runs/a.json", b"{}")
    blobs.write("data", "runs/b.json", b"{}")
    blobs.write("data", "releases/a.json", b"{}")

    assert [i.name for i in blobs.list("data", "runs/")] == ["runs/a.json", "runs/b.json"]
    with pytest.raises(PreconditionFailed):
        blobs.delete("data", "runs/b.json", if_match=etag)
    blobs.delete("data", "runs/a.json", if_match=etag)
    blobs.delete("data", "runs/a.json")  # deleting what is gone is fine without a condition
    with pytest.raises(PreconditionFailed):
        blobs.delete("data", "runs/a.json", if_match=etag)
    assert blobs.names("data") == ["releases/a.json", "runs/b.json"]


def test_a_missing_container_is_an_error_not_a_silent_write(blobs: InMemoryBlobStore) -> None:
    with pytest.raises(LookupError):
        blobs.write("nowhere", "a", b"1")


# --- state documents ------------------------------------------------------------------------------------------


def test_only_one_creator_wins(blobs: InMemoryBlobStore) -> None:
    store = StateStore(blobs, "state")

    assert store.create("runs/r1", {"by": "first"}) is not None
    assert store.create("runs/r1", {"by": "second"}) is None
    assert store.get("runs/r1").body == {"by": "first"}


def test_replace_loses_to_a_writer_that_came_between(blobs: InMemoryBlobStore) -> None:
    store = StateStore(blobs, "state")
    read = store.create("releases/x", {"status": "deploying"})
    store.replace(read, {"status": "failed"})

    with pytest.raises(PreconditionFailed):
        store.replace(read, {"status": "production"})
    assert store.get("releases/x").body == {"status": "failed"}


def test_update_retries_until_its_change_applies_to_the_latest_body(blobs: InMemoryBlobStore) -> None:
    store = StateStore(blobs, "state")
    store.create("counter", {"n": 0})
    blobs.before_once("write", lambda: store.put("counter", {"n": 10}))  # another writer wins the race

    store.update("counter", lambda body: {"n": body["n"] + 1})

    assert store.get("counter").body == {"n": 11}


def test_update_returning_none_writes_nothing(blobs: InMemoryBlobStore) -> None:
    store = StateStore(blobs, "state")
    created = store.create("doc", {"a": 1})

    unchanged = store.update("doc", lambda body: None)

    assert unchanged is not None and unchanged.etag == created.etag


# --- the audit log --------------------------------------------------------------------------------------------


def test_entries_are_numbered_timed_and_chained(blobs: InMemoryBlobStore) -> None:
    clock = FakeClock()
    audit = AuditLog(blobs, "audit", clock)

    first = audit.record("on_data_landed", "file.accepted", "a.csv", rows=3)
    clock.advance(5)
    second = audit.record("reconcile", "training.started", "train-1")

    assert (first.seq, second.seq) == (1, 2)
    assert second.prev == first.hash
    assert second.time == clock.now().isoformat()
    assert [e.detail for e in audit.entries()] == [{"rows": 3}, {}]
    assert audit.verify() == []


def test_concurrent_writers_chain_to_each_other(blobs: InMemoryBlobStore) -> None:
    clock = FakeClock()
    ours, theirs = AuditLog(blobs, "audit", clock), AuditLog(blobs, "audit", clock)
    ours.record("a", "first", "x")
    blobs.before_once("write", lambda: theirs.record("b", "concurrent", "y"))

    ours.record("a", "second", "x")

    assert [e.action for e in ours.entries()] == ["first", "concurrent", "second"]
    assert ours.verify() == []


def test_verify_finds_an_altered_entry(blobs: InMemoryBlobStore) -> None:
    audit = AuditLog(blobs, "audit", FakeClock())
    audit.record("reconcile", "challenger.rejected", "train-1", reasons=["r2 too low"])
    audit.record("reconcile", "training.started", "train-2")
    first = blobs.names("audit")[0]
    tampered = json.loads(blobs.text("audit", first))
    tampered["action"] = "model.registered"
    blobs.write("audit", first, json.dumps(tampered).encode())

    assert audit.verify() == ["entry 1 was altered"]


def test_verify_finds_a_removed_entry(blobs: InMemoryBlobStore) -> None:
    audit = AuditLog(blobs, "audit", FakeClock())
    for index in range(3):
        audit.record("x", "step", str(index))

    blobs.delete("audit", blobs.names("audit")[1])

    problems = audit.verify()
    assert "entry 2 has seq 3" in problems
    assert "entry 3 does not chain to the previous entry" in problems
