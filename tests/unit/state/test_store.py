"""Typed records in the state store: conditional writes on the in-memory blob store (whose ETag rules the
integration tests check against Azurite's), and records that come back exactly as they were written."""

from __future__ import annotations

import dataclasses

import pytest

from shared.ports import PreconditionFailed
from shared.state import keys
from shared.state.keys import Key
from shared.state.records import (
    Production,
    Release,
    ReleaseStatus,
    ReleaseStep,
    Run,
    RunRequest,
    RunStatus,
    WaitingNote,
)
from shared.state.store import CorruptRecord, Decision, Lease, StateStore, Stored, encode
from shared.testing.counting import CountingBlobStore
from tests.fakes import FakeClock, InMemoryBlobStore


@pytest.fixture()
def store() -> StateStore:
    blobs = InMemoryBlobStore()
    blobs.ensure_containers(["state"])
    return StateStore(blobs, "state")


def _run(status: RunStatus = RunStatus.STARTING) -> Run:
    request = RunRequest("req-1", ("data", "drift"), ("evt-1", "evt-2"))
    return Run(
        "train-1", status, "ds-1", {"id": "ds-1", "files": []}, request, None, "2026-01-01T00:00:00+00:00"
    )


def test_a_record_comes_back_as_written_with_its_lease_and_outbox(store: StateStore) -> None:
    lease = Lease("worker-1", "2026-01-01T00:02:00+00:00")
    outbox = (
        Decision("reconcile", "training.started", "train-1", "runs/train-1:started", {"files": 3}, "t"),
    )

    store.create(keys.run("train-1"), _run(), lease=lease, outbox=outbox)
    stored = store.get(keys.run("train-1"))

    assert stored is not None
    assert stored.record == _run() and stored.record.status is RunStatus.STARTING
    assert stored.record.request.events == ("evt-1", "evt-2")
    assert (stored.lease, stored.outbox) == (lease, outbox)


def test_nested_records_round_trip(store: StateStore) -> None:
    previous = Production("m", "1", "model-v1", "m-v1", "t0")
    pointer = Production("m", "2", "model-v2", "m-v2", "t1", previous)
    release = Release(
        "m-v2",
        "m",
        "2",
        "model-v2",
        ReleaseStatus.CANARY,
        "evt",
        (ReleaseStep(ReleaseStatus.CANARY, "t", {"percent": 10}),),
    )

    store.put(keys.production("m"), pointer)
    store.put(keys.release("m-v2"), release)

    assert store.get(keys.production("m")).record == pointer
    assert store.get(keys.release("m-v2")).record == release


def test_only_one_creator_wins(store: StateStore) -> None:
    assert store.create(keys.WAITING, WaitingNote("first")) is not None
    assert store.create(keys.WAITING, WaitingNote("second")) is None
    assert store.get(keys.WAITING).record == WaitingNote("first")


def test_replace_loses_to_a_writer_that_came_between(store: StateStore) -> None:
    read = store.create(keys.run("train-1"), _run())
    store.replace(dataclasses.replace(read, record=_run(RunStatus.FAILED)))

    with pytest.raises(PreconditionFailed):
        store.replace(dataclasses.replace(read, record=_run(RunStatus.REGISTERED)))
    assert store.get(keys.run("train-1")).record.status is RunStatus.FAILED


def test_update_retries_until_its_change_applies_to_the_latest_record(store: StateStore) -> None:
    store.create(keys.WAITING, WaitingNote("a"))
    blobs = store._blobs
    assert isinstance(blobs, InMemoryBlobStore)
    blobs.before_once("write", lambda: store.put(keys.WAITING, WaitingNote("b")))  # another writer wins

    store.update(keys.WAITING, lambda note: WaitingNote(note.reason + "+"))

    assert store.get(keys.WAITING).record == WaitingNote("b+")


def test_update_returning_none_writes_nothing(store: StateStore) -> None:
    created = store.create(keys.WAITING, WaitingNote("a"))

    unchanged = store.update(keys.WAITING, lambda note: None)

    assert unchanged is not None and unchanged.etag == created.etag


def test_listing_one_kind_never_returns_another(store: StateStore) -> None:
    store.put(keys.run("train-1"), _run())
    store.put(keys.production("m"), Production("m", "1", "model-v1", "m-v1", "t0"))
    store.put(keys.release("m-v1"), Release("m-v1", "m", "1", "model-v1", ReleaseStatus.PRODUCTION, "e"))

    assert [s.record.id for s in store.list(keys.RELEASES)] == ["m-v1"]
    assert [s.record.run_id for s in store.list(keys.RUNS)] == ["train-1"]


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'{"record": {"reason": 3}}', b'{"record": {}}', b'{"lease": null}'],
)
def test_a_blob_that_is_not_a_record_of_its_kind_is_refused_by_name(store: StateStore, data: bytes) -> None:
    store._blobs.write("state", "training/waiting.json", data)

    with pytest.raises(CorruptRecord, match=r"state/training/waiting: not a WaitingNote record"):
        store.get(keys.WAITING)


def test_keys_of_distinct_kinds_live_under_distinct_prefixes() -> None:
    prefixes = [
        keys.FILES,
        keys.CATALOG,
        keys.CAUSES,
        keys.RUNS,
        keys.RELEASES,
        keys.PRODUCTIONS,
        keys.COOLDOWNS,
        keys.QUALITY_COOLDOWNS,
        keys.LABEL_FILES,
        keys.QUALITY_CHECKS,
    ]
    paths = [p.path for p in prefixes] + [keys.WAITING.path, keys.SCHEMA.path]
    for a in paths:
        for b in paths:
            assert a == b or not b.startswith(a), f"{b} lies inside {a}"
    assert keys.landed_file("a.csv", "e1") != keys.landed_file("a.csv", "e2")
    assert keys.label_file("a.csv", "e1") != keys.label_file("a.csv", "e2")
    assert isinstance(keys.run("r"), Key) and keys.run("r").kind is Run


def test_failures_and_the_stuck_mark_survive_a_round_trip_and_records_without_them_still_read() -> None:
    from shared.state.store import Failures, Stuck, decode, encode

    key = keys.release("m-v1")
    record = Release("m-v1", "m", "1", "model-v1", ReleaseStatus.DEPLOYING, "evt-1")
    marked = Stored(key, record, "", failures=Failures(2, "2026-01-01T00:00:00+00:00", "boom"))
    marked = dataclasses.replace(marked, stuck=Stuck("2026-01-01T01:00:00+00:00", "failed 2 times", 2))

    assert decode(key, encode(marked), "e") == dataclasses.replace(marked, etag="e")
    import msgspec

    plain = decode(key, b'{"record": ' + msgspec.json.encode(record) + b"}", "e")
    assert plain.failures is None and plain.stuck is None


def test_open_work_comes_from_the_index_and_settled_records_are_neither_listed_nor_read() -> None:
    blobs = InMemoryBlobStore()
    blobs.ensure_containers(["state"])
    counting = CountingBlobStore(blobs)
    store = StateStore(counting, "state")
    for n in range(50):
        store.create(keys.run(f"train-{n}"), _run(RunStatus.REJECTED))
    running = store.create(keys.run("train-open"), _run(RunStatus.RUNNING))
    leased = store.create(keys.run("train-leased"), _run(RunStatus.REJECTED), lease=Lease("w", "2030-01-01"))
    counting.reset()

    assert sorted(s.key.path for s in store.open(keys.RUNS)) == ["runs/train-leased", "runs/train-open"]
    counts = counting.reset()
    assert counts[("read", "state/runs")] == 2 and counts[("list", "state")] == 0  # the two open ones only

    assert running is not None and leased is not None
    store.replace(
        dataclasses.replace(running, record=_run(RunStatus.REGISTERED))
    )  # settled: out of the index
    store.replace(dataclasses.replace(leased, lease=None))
    assert list(store.open(keys.RUNS)) == []
    assert "open" not in blobs.tags("state", "runs/train-open.json")


def test_a_trailing_index_costs_a_tick_not_a_record() -> None:
    """Azure's index lags the writes: a record opened a moment ago is found by a later look, one settled a
    moment ago is read and left out."""
    clock = FakeClock()
    blobs = InMemoryBlobStore(clock)
    blobs.ensure_containers(["state"])
    blobs.index_delay = 5.0
    store = StateStore(blobs, "state")
    opened = store.create(keys.run("train-1"), _run(RunStatus.RUNNING))
    assert list(store.open(keys.RUNS)) == []
    clock.advance(6)
    assert [s.key.path for s in store.open(keys.RUNS)] == ["runs/train-1"]
    assert opened is not None
    store.replace(dataclasses.replace(opened, record=_run(RunStatus.REJECTED)))
    assert list(store.open(keys.RUNS)) == []  # still in the index, read, found settled


def test_records_written_before_the_index_are_tagged_once(store: StateStore) -> None:
    blobs = store._blobs
    untagged = Stored(keys.run("train-old"), _run(RunStatus.RUNNING), "")
    blobs.write("state", "runs/train-old.json", encode(untagged))  # as an older version wrote it
    store.create(keys.run("train-done"), _run(RunStatus.REJECTED))
    assert list(store.open(keys.RUNS)) == []
    assert store.reindex(keys.RUNS) == 1
    assert [s.key.path for s in store.open(keys.RUNS)] == ["runs/train-old"]


def test_a_page_of_records_and_the_next_marker(store: StateStore) -> None:
    for n in range(5):
        store.create(keys.run(f"train-{n}"), _run())
    first, marker = store.page(keys.RUNS, None, 3)
    second, end = store.page(keys.RUNS, marker, 3)
    assert [s.key.path for s in first + second] == [f"runs/train-{n}" for n in range(5)]
    assert marker is not None and end is None
