"""Typed records in the state container, updated with optimistic concurrency (ETags).

Each record is one JSON blob `<key>.json`: `{"record": ..., "lease": ..., "outbox": [...]}`, with `failures` and
`stuck` when its handling has been failing (see `shared.state.lease`). A writer reads the
record and its ETag, decides, and writes back only if nobody changed it in between; a loser re-reads and decides
again. Creation uses if-none-match, so two workers cannot both create the same record. The lease and the outbox
belong to `shared.state.lease`, the one way handlers change a leased record.

JSON (de)serialisation happens here and nowhere else: msgspec turns records into JSON and back, checking every
field's type on the way in (a record that does not fit its kind is `CorruptRecord`, naming key and field).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from shared.ports import BlobStore, PreconditionFailed
from shared.state.keys import Key, Prefix

R = TypeVar("R")


class CorruptRecord(ValueError):
    """A stored blob is not a record of the kind its key holds."""


@dataclass(frozen=True)
class Lease:
    """A worker's claim on a record until `until` (ISO time); another live worker leaves it alone."""

    owner: str
    until: str


@dataclass(frozen=True)
class Decision:
    """A decision waiting in a record's outbox for the audit log, recorded once by `key`."""

    actor: str
    action: str
    subject: str
    key: str
    detail: dict[str, Any] = field(default_factory=dict)
    at: str = ""


@dataclass(frozen=True)
class Failures:
    """Handling of a record failed `count` times in a row, the first at `since`; `last` says how."""

    count: int
    since: str
    last: str


@dataclass(frozen=True)
class Stuck:
    """A record set aside after failing too often or too long: no handler or tick takes it again."""

    at: str
    reason: str
    attempts: int


@dataclass(frozen=True)
class Stored(Generic[R]):
    """A record as read or written, with the ETag that guards its next change."""

    key: Key[R]
    record: R
    etag: str
    lease: Lease | None = None
    outbox: tuple[Decision, ...] = ()
    failures: Failures | None = None
    stuck: Stuck | None = None


class StateStore:
    def __init__(self, blobs: BlobStore, container: str, cache_size: int = 20_000) -> None:
        self._blobs = blobs
        self._container = container
        # Listing gives each record's ETag: a record whose ETag we have seen need not be read again.
        self._seen: OrderedDict[str, Stored[Any]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._fixed: dict[str, Stored[Any]] = {}
        self._settled: dict[str, str] = {}  # path -> ETag of records found settled (`unsettled`)

    def get(self, key: Key[R]) -> Stored[R] | None:
        blob = self._blobs.read(self._container, _name(key))
        if blob is None:
            return None
        return decode(key, blob.data, blob.info.etag)

    def fixed(self, key: Key[R]) -> Stored[R] | None:
        """A record that never changes once created (the frozen schema): read until it exists, then kept."""
        with self._lock:
            kept = self._fixed.get(key.path)
        if kept is not None:
            return kept
        stored = self.get(key)
        if stored is not None:
            with self._lock:
                self._fixed[key.path] = stored
        return stored

    def exists(self, key: Key[R]) -> bool:
        return self._blobs.info(self._container, _name(key)) is not None

    def create(
        self, key: Key[R], record: R, *, lease: Lease | None = None, outbox: tuple[Decision, ...] = ()
    ) -> Stored[R] | None:
        """Create the record unless it exists; None means somebody else created it first."""
        stored = Stored(key, record, "", lease, outbox)
        try:
            etag = self._blobs.write(self._container, _name(key), encode(stored), if_none_match=True)
        except PreconditionFailed:
            return None
        return dataclasses.replace(stored, etag=etag)

    def replace(self, stored: Stored[R]) -> Stored[R]:
        """Write `stored` if the blob is unchanged since its ETag was read; raises PreconditionFailed otherwise."""
        etag = self._blobs.write(self._container, _name(stored.key), encode(stored), if_match=stored.etag)
        return dataclasses.replace(stored, etag=etag)

    def put(self, key: Key[R], record: R) -> Stored[R]:
        """Unconditional write, for records that have one writer."""
        stored = Stored(key, record, "")
        return dataclasses.replace(
            stored, etag=self._blobs.write(self._container, _name(key), encode(stored))
        )

    def update(
        self,
        key: Key[R],
        change: Callable[[R | None], R | None],
        attempts: int = 20,
        *,
        fresh: bool = False,
    ) -> Stored[R] | None:
        """Apply `change` to the current record (None if absent) until the write wins; a None change writes
        nothing and returns what is stored. For records without a lease: one compare-and-swap per change.
        `fresh`: the record is most likely absent, so it is created without looking first (one write)."""
        if fresh and (record := change(None)) is not None and (created := self.create(key, record)):
            return created
        for _ in range(attempts):
            current = self.get(key)
            record = change(None if current is None else current.record)
            if record is None:
                return current
            try:
                if current is None:
                    created = self.create(key, record)
                    if created is not None:
                        return created
                    continue
                return self.replace(dataclasses.replace(current, record=record))
            except PreconditionFailed:
                continue
        raise PreconditionFailed(f"state/{key}: too much contention after {attempts} attempts")

    def delete(self, key: Key[R], stored: Stored[R] | None = None) -> None:
        """Delete; given the `stored` record read earlier, only if unchanged since (else PreconditionFailed)."""
        self._blobs.delete(self._container, _name(key), if_match=stored.etag if stored else None)

    def unsettled(self, prefix: Prefix[R], settled: Callable[[Stored[R]], bool]) -> Iterator[Stored[R]]:
        """The records under `prefix` of which `settled` is false. A record found settled is remembered by its
        ETag alone (a few bytes, not the record) and not read again while the listing shows that ETag: a tick
        reads what is open, not the history."""
        for info in self._blobs.list(self._container, prefix.path):
            path = info.name.removesuffix(".json")
            with self._lock:
                known_settled = self._settled.get(path) == info.etag
            if known_settled:
                continue
            stored = self.get(Key(path, prefix.kind))
            if stored is None:
                continue
            if settled(stored):
                with self._lock:
                    self._settled[path] = stored.etag
                continue
            yield stored

    def keys(self, prefix: Prefix[R]) -> set[str]:
        """The paths of the records under `prefix`, from the listing alone: no record is read."""
        return {info.name.removesuffix(".json") for info in self._blobs.list(self._container, prefix.path)}

    def list(self, prefix: Prefix[R]) -> Iterator[Stored[R]]:
        for info in self._blobs.list(self._container, prefix.path):
            key = Key(info.name.removesuffix(".json"), prefix.kind)
            with self._lock:
                cached = self._seen.get(key.path)
            if cached is not None and cached.etag == info.etag:
                yield cached  # records are frozen: nobody changes one that was read
                continue
            stored = self.get(key)
            if stored is not None:
                self._remember(stored)
                yield stored

    def _remember(self, stored: Stored[Any]) -> None:
        with self._lock:
            self._seen[stored.key.path] = stored
            self._seen.move_to_end(stored.key.path)
            while len(self._seen) > self._cache_size:
                self._seen.popitem(last=False)


def encode(stored: Stored[Any]) -> bytes:
    import msgspec

    body: dict[str, Any] = {"record": stored.record, "lease": stored.lease, "outbox": stored.outbox}
    if stored.failures is not None:
        body["failures"] = stored.failures
    if stored.stuck is not None:
        body["stuck"] = stored.stuck
    return msgspec.json.encode(body, enc_hook=_plain)


def _plain(value: Any) -> Any:
    """Values from evidence and payloads that JSON has no type for: NumPy scalars as numbers, the rest as text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def to_json(record: Any) -> Any:
    """A record (or None) as plain JSON values, for answers to people and other systems."""
    import msgspec

    return msgspec.json.decode(msgspec.json.encode(record, enc_hook=_plain))


def decode(key: Key[R], data: bytes, etag: str) -> Stored[R]:
    import msgspec

    try:
        raw = msgspec.json.decode(data)
        if not isinstance(raw, dict) or "record" not in raw:
            raise msgspec.ValidationError("expected an object with a `record`")
        record = msgspec.convert(raw["record"], key.kind)
        lease = msgspec.convert(raw.get("lease"), Lease | None)
        outbox = msgspec.convert(raw.get("outbox") or (), tuple[Decision, ...])
        failures = msgspec.convert(raw.get("failures"), Failures | None)
        stuck = msgspec.convert(raw.get("stuck"), Stuck | None)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise CorruptRecord(f"state/{key}: not a {key.kind.__name__} record: {error}") from None
    return Stored(key, record, etag, lease, outbox, failures, stuck)


def _name(key: Key[Any]) -> str:
    return f"{key.path}.json"
