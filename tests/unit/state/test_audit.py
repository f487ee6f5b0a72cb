"""The hash-chained audit log on the in-memory blob store (whose ETag rules the integration tests check
against Azurite's)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.ports import BlobStore, PreconditionFailed
from shared.state.audit import AuditEntry, AuditLog
from shared.testing.counting import CountingBlobStore
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


def test_verify_finds_a_key_recorded_twice(blobs: InMemoryBlobStore) -> None:
    audit = AuditLog(blobs, "audit", FakeClock())
    audit.record("on_data_landed", "file.accepted", "a.csv", key="file:a.csv")
    audit.record("reconcile", "training.started", "train-1")
    for marker in [name for name in blobs.names("audit") if name.startswith("keys/")]:
        blobs.delete("audit", marker)  # the marker lost: nothing stops the second entry
    audit.record("on_data_landed", "file.accepted", "a.csv", key="file:a.csv")

    assert audit.verify() == ["key file:a.csv recorded 2 times (entries 1, 3)"]


# --- once per key, whatever the interleaving ------------------------------------------------------------------


class Interleaved(BlobStore):
    """The in-memory store, with something done just before its n-th call (of any method, or of one)."""

    def __init__(self, inner: InMemoryBlobStore, pause: float = 0.0, seed: int = 0) -> None:
        self.inner = inner
        self.pause = pause
        self._random = random.Random(seed)
        self.calls: dict[str, int] = {}
        self._actions: dict[tuple[str, int], Callable[[], None]] = {}

    def before(self, method: str, n: int, action: Callable[[], None]) -> None:
        self._actions[(method, n)] = action

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.pause:
            time.sleep(self._random.uniform(0, self.pause))  # other threads run between any two calls
        for counted in ("any", method):
            self.calls[counted] = self.calls.get(counted, 0) + 1
            action = self._actions.pop((counted, self.calls[counted]), None)
            if action is not None:
                action()
        return getattr(self.inner, method)(*args, **kwargs)

    def ensure_containers(self, names: Any) -> None:
        self.inner.ensure_containers(names)

    def read(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("read", *args, **kwargs)

    def info(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("info", *args, **kwargs)

    def write(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("write", *args, **kwargs)

    def append(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("append", *args, **kwargs)

    def list(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("list", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("delete", *args, **kwargs)

    def url(self, container: str, name: str) -> str:
        return self.inner.url(container, name)

    def close(self) -> None:
        self.inner.close()


def _keyed(audit: AuditLog, worker: str) -> AuditEntry:
    return audit.record(worker, "file.accepted", "a.csv", key="file:a.csv", worker=worker)


def _recorded_once(blobs: InMemoryBlobStore, *returned: AuditEntry) -> None:
    audit = AuditLog(blobs, "audit", FakeClock())
    keyed = [e for e in audit.entries() if e.key == "file:a.csv"]
    assert len(keyed) == 1, [(e.seq, e.actor) for e in keyed]
    assert all(entry == keyed[0] for entry in returned), "every caller gets the one entry"
    assert audit.verify() == []


def _each_moment(run: Callable[[InMemoryBlobStore, int], bool]) -> int:
    """Run `run(fresh store, n)` for n = 1, 2, ... until it says its n-th call never came; how many ran."""
    n = 1
    while run(_store(), n):
        n += 1
    return n - 1


def _store() -> InMemoryBlobStore:
    store = InMemoryBlobStore()
    store.ensure_containers(["audit"])
    return store


def test_a_key_recorded_by_another_instance_at_any_moment_is_recorded_once() -> None:
    def run(blobs: InMemoryBlobStore, n: int) -> bool:
        clock = FakeClock()
        AuditLog(blobs, "audit", clock).record("x", "before", "y")  # so that there is a tail to chain to
        ours = Interleaved(blobs)
        theirs: list[AuditEntry] = []
        # Just before our n-th call to the store, the same event, delivered to another instance, is recorded
        # there, and an unrelated decision takes the next number.
        ours.before("any", n, lambda: theirs.append(_keyed(AuditLog(blobs, "audit", clock), "theirs")))
        ours.before("any", n + 1, lambda: AuditLog(blobs, "audit", clock).record("z", "unrelated", "w"))

        mine = _keyed(AuditLog(ours, "audit", clock), "ours")

        _recorded_once(blobs, mine, *theirs)
        return bool(theirs)

    assert _each_moment(run) >= 4


@pytest.mark.parametrize(
    "lost", [PreconditionFailed("exists (the SDK's retry of a create that landed)"), OSError("reset")]
)
def test_a_write_whose_response_is_lost_is_not_written_again(lost: Exception) -> None:
    def run(blobs: InMemoryBlobStore, n: int) -> bool:
        clock = FakeClock()
        ours = Interleaved(blobs)
        ours.before("write", n, lambda: blobs.after_once("write", lost))
        audit = AuditLog(ours, "audit", clock)

        try:
            first = _keyed(audit, "ours")
        except OSError:
            first = _keyed(audit, "ours")  # the caller's retry: Event Grid delivers the event again
        retried = _keyed(AuditLog(blobs, "audit", clock), "ours")

        _recorded_once(blobs, first, retried)
        return ours.calls.get("write", 0) >= n

    assert _each_moment(run) >= 2  # the key's marker and the entry


def test_an_unkeyed_entry_whose_create_landed_but_answered_exists_is_written_once(
    blobs: InMemoryBlobStore,
) -> None:
    audit = AuditLog(blobs, "audit", FakeClock())
    blobs.after_once("write", PreconditionFailed("exists: the retry of a create that landed"))

    audit.record("reconcile", "training.started", "train-1")

    assert [e.action for e in audit.entries()] == ["training.started"]
    assert audit.verify() == []


def test_instances_recording_the_same_keys_at_once_record_each_once(blobs: InMemoryBlobStore) -> None:
    clock = FakeClock()
    workers = 6
    start = threading.Barrier(workers)
    returned: dict[str, list[AuditEntry]] = {}

    def work(worker: int) -> None:
        audit = AuditLog(
            Interleaved(blobs, 0.002, seed=worker), "audit", clock
        )  # one instance each, as hosts
        start.wait()
        for index in range(10):
            entry = audit.record(f"w{worker}", "file.accepted", f"f{index}", key=f"file:f{index}")
            returned.setdefault(entry.key or "", []).append(entry)
            audit.record(f"w{worker}", "noise", f"f{index}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    audit = AuditLog(blobs, "audit", clock)
    assert audit.verify() == []
    keyed = [e for e in audit.entries() if e.key]
    assert sorted(e.key for e in keyed) == sorted(f"file:f{index}" for index in range(10))
    assert all(entries == [entries[0]] * workers for entries in returned.values())
    assert len(audit.entries()) == 10 + 10 * workers


# --- what it costs --------------------------------------------------------------------------------------------


def _counted(blobs: InMemoryBlobStore) -> tuple[AuditLog, CountingBlobStore]:
    counting = CountingBlobStore(blobs)
    return AuditLog(counting, "audit", FakeClock()), counting


def test_a_new_key_costs_its_marker_and_its_entry_and_nothing_else(blobs: InMemoryBlobStore) -> None:
    audit, counting = _counted(blobs)
    audit.record("x", "first", "y")
    counting.reset()

    audit.record("on_data_landed", "file.accepted", "a.csv", key="file:a.csv")
    audit.record("reconcile", "training.started", "train-1")

    assert counting.reset() == {("write", "audit/keys"): 1, ("write", "audit/entries"): 2}
    assert audit.verify() == []


@pytest.mark.parametrize("length", [10, 2_500])
def test_the_tail_is_found_without_listing_the_log_at_a_cost_that_does_not_grow(
    blobs: InMemoryBlobStore, length: int
) -> None:
    writer = AuditLog(blobs, "audit", FakeClock())
    for index in range(length):
        writer.record("x", "step", str(index))
    last = writer.recent(1)[0]
    fresh, counting = _counted(blobs)  # a new process

    entry = fresh.record("y", "next", "z")

    assert entry.seq == length + 1 and entry.prev == last.hash
    counts = counting.reset()
    assert not [op for op, _ in counts if op == "list"]
    assert sum(counts.values()) <= 2 + 2 * 10 + 2, counts  # checkpoint, probes, tail entry, the write
    assert fresh.verify() == []


def test_a_stale_checkpoint_or_none_still_finds_the_tail(blobs: InMemoryBlobStore) -> None:
    writer = AuditLog(blobs, "audit", FakeClock())
    for index in range(1_050):
        writer.record("x", "step", str(index))
    blobs.delete("audit", "tail.json")
    assert AuditLog(blobs, "audit", FakeClock()).record("y", "next", "z").seq == 1_051
    blobs.write("audit", "tail.json", json.dumps({"seq": 5_000}).encode())  # ahead of the log
    assert AuditLog(blobs, "audit", FakeClock()).record("y", "next", "z").seq == 1_052
    assert writer.verify() == []


def test_recent_reads_only_the_entries_it_returns(blobs: InMemoryBlobStore) -> None:
    writer = AuditLog(blobs, "audit", FakeClock())
    for index in range(300):
        writer.record("x", "step", str(index))
    reader, counting = _counted(blobs)

    recent = reader.recent(10)

    assert [e.subject for e in recent] == [str(index) for index in range(290, 300)]
    assert counting.reset()[("read", "audit/entries")] <= 10 + 2  # and the tail, found and checked
    assert AuditLog(blobs, "audit", FakeClock()).recent(10)[-1] == writer.entries()[-1]


def test_recent_sees_what_other_instances_wrote_since(blobs: InMemoryBlobStore) -> None:
    ours, theirs = AuditLog(blobs, "audit", FakeClock()), AuditLog(blobs, "audit", FakeClock())
    ours.record("a", "ours", "x")
    theirs.record("b", "theirs", "y")

    assert [e.action for e in ours.recent(10)] == ["ours", "theirs"]
