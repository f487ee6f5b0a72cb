"""The storage adapter against Azurite: the conditional writes every exactly-once guarantee rests on."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

import pytest

from shared.ports import PreconditionFailed
from shared.state import keys
from shared.state.audit import AuditLog
from shared.state.records import WaitingNote
from shared.state.store import StateStore

pytestmark = pytest.mark.integration


@pytest.fixture()
def container(blob_store, unique: str) -> str:
    blob_store.ensure_containers([unique])
    return unique


def test_create_only_once(blob_store, container: str) -> None:
    blob_store.write(container, "a.json", b"1", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        blob_store.write(container, "a.json", b"2", if_none_match=True)
    assert blob_store.read(container, "a.json").data == b"1"


def test_write_if_unchanged(blob_store, container: str) -> None:
    etag = blob_store.write(container, "a.json", b"1")
    blob_store.write(container, "a.json", b"2", if_match=etag)
    with pytest.raises(PreconditionFailed):
        blob_store.write(container, "a.json", b"3", if_match=etag)
    assert blob_store.read(container, "a.json").data == b"2"


def test_delete_if_unchanged(blob_store, container: str) -> None:
    stale = blob_store.write(container, "a.json", b"1")
    blob_store.write(container, "a.json", b"2")
    with pytest.raises(PreconditionFailed):
        blob_store.delete(container, "a.json", if_match=stale)
    blob_store.delete(container, "a.json")
    assert blob_store.read(container, "a.json") is None


def test_list_by_prefix(blob_store, container: str) -> None:
    for name in ("runs/1.json", "runs/2.json", "releases/1.json"):
        blob_store.write(container, name, b"{}")
    assert sorted(i.name for i in blob_store.list(container, "runs/")) == ["runs/1.json", "runs/2.json"]


def test_concurrent_updates_lose_nothing(blob_store, container: str) -> None:
    state = StateStore(blob_store, container)

    def increment() -> None:
        for _ in range(5):
            state.update(
                keys.WAITING, lambda note: WaitingNote(str(int(note.reason if note else 0) + 1)), attempts=100
            )

    threads = [threading.Thread(target=increment) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state.get(keys.WAITING).record.reason == "30"


def test_audit_chain_holds_under_concurrent_writers(blob_store, container: str) -> None:
    audit = AuditLog(blob_store, container, lambda: datetime.now(UTC))

    def write(worker: int) -> None:
        for index in range(6):
            audit.record(f"worker-{worker}", "tested", f"item-{index}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = audit.entries()
    assert len(entries) == 30
    assert [e.seq for e in entries] == list(range(1, 31))
    assert audit.verify() == []


def test_audit_detects_tampering(blob_store, container: str) -> None:
    audit = AuditLog(blob_store, container, lambda: datetime.now(UTC))
    audit.record("approve", "release.approved", "model-v1", approver="alice")
    audit.record("reconcile", "release.promoted", "model-v1")
    name = "entries/0000000001.json"
    blob = blob_store.read(container, name)
    blob_store.write(container, name, blob.data.replace(b"alice", b"mallory"))
    assert any("altered" in problem for problem in audit.verify())


class Unhurried:
    """The store, pausing a random moment before each call: the instances' calls interleave every which way."""

    def __init__(self, store, seed: int) -> None:
        self._store = store
        self._random = random.Random(seed)

    def __getattr__(self, name: str):
        method = getattr(self._store, name)

        def call(*args, **kwargs):
            time.sleep(self._random.uniform(0, 0.02))
            return method(*args, **kwargs)

        return call


def test_audit_records_a_key_once_when_instances_record_it_at_once(blob_store, container: str) -> None:
    workers, keys_each = 6, 10
    start = threading.Barrier(workers)
    returned: dict[str, list] = {}

    def work(worker: int) -> None:
        # One instance per host of the app, each with its own timing.
        audit = AuditLog(Unhurried(blob_store, worker), container, lambda: datetime.now(UTC))
        start.wait()
        for index in range(keys_each):
            entry = audit.record(f"w{worker}", "file.accepted", f"f{index}", key=f"file:f{index}")
            returned.setdefault(f"file:f{index}", []).append(entry)
            audit.record(f"w{worker}", "noise", f"f{index}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    audit = AuditLog(blob_store, container, lambda: datetime.now(UTC))
    assert audit.verify() == []
    entries = audit.entries()
    assert sorted(e.key for e in entries if e.key) == sorted(returned)
    assert len(entries) == keys_each * (1 + workers)
    assert all(found == [found[0]] * workers for found in returned.values())


def test_a_blob_is_read_in_chunks_of_one_version(blob_store, container: str) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB: more than one chunk
    blob_store.write(container, "big.bin", data)
    stream = blob_store.open(container, "big.bin")
    chunks = list(stream.chunks)
    assert len(chunks) > 1 and max(map(len, chunks)) <= 4 * 1024 * 1024
    assert b"".join(chunks) == data and stream.info.size == len(data)
    assert blob_store.open(container, "absent.bin") is None

    stream = blob_store.open(container, "big.bin")
    first = next(stream.chunks)
    assert first
    blob_store.write(container, "big.bin", b"replaced")
    with pytest.raises(PreconditionFailed):
        list(stream.chunks)


def test_a_copy_is_made_by_the_service_and_only_of_the_version_asked_for(blob_store, container: str) -> None:
    etag = blob_store.write(container, "source.csv", b"a,b\n1,2\n")
    blob_store.copy(container, "source.csv", container, "copy.csv", source_etag=etag)
    assert blob_store.read(container, "copy.csv").data == b"a,b\n1,2\n"
    with pytest.raises(PreconditionFailed):  # the target exists
        blob_store.copy(container, "source.csv", container, "copy.csv", if_none_match=True)
    blob_store.write(container, "source.csv", b"changed")
    with pytest.raises(PreconditionFailed):  # the source changed
        blob_store.copy(container, "source.csv", container, "other.csv", source_etag=etag)
    with pytest.raises(PreconditionFailed):  # the source is gone
        blob_store.copy(container, "absent.csv", container, "other.csv")
    assert blob_store.info(container, "other.csv") is None


def test_index_tags_find_open_records_and_a_write_without_them_untags(blob_store, container: str) -> None:
    blob_store.write(container, "runs/open.json", b"{}", tags={"open": "runs"})
    blob_store.write(container, "runs/done.json", b"{}")
    blob_store.write(container, "files/open.json", b"{}", tags={"open": "files"})
    assert list(blob_store.find(container, "open", "runs")) == ["runs/open.json"]
    blob_store.write(container, "runs/open.json", b"{}")  # settled: written without the tag
    assert list(blob_store.find(container, "open", "runs")) == []
    assert list(blob_store.find(container, "open", "files")) == ["files/open.json"]


def test_pages_of_a_listing_continue_from_their_marker(blob_store, container: str) -> None:
    names = [f"landing/{n:02d}.csv" for n in range(7)]
    for name in names:
        blob_store.write(container, name, b"a\n")
    blob_store.write(container, "other/x.csv", b"a\n")
    seen, marker = [], None
    for _ in range(10):
        page, marker = blob_store.list_page(container, "landing/", marker=marker, limit=3)
        assert len(page) <= 3
        seen += [info.name for info in page]
        if marker is None:
            break
    assert seen == names
