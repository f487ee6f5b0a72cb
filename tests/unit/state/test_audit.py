"""The hash-chained audit log on the in-memory blob store (whose ETag rules the integration tests check
against Azurite's)."""

from __future__ import annotations

import json

import pytest

from shared.state.audit import AuditLog
from tests.fakes import FakeClock, InMemoryBlobStore


@pytest.fixture()
def blobs() -> InMemoryBlobStore:
    store = InMemoryBlobStore()
    store.ensure_containers(["state", "audit", "data"])
    return store


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
