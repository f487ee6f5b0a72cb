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

from shared.ports import BlobInfo, BlobStore, PreconditionFailed
from shared.state import keys
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
            etag = self._write(stored, if_none_match=True)
        except PreconditionFailed:
            return None
        return dataclasses.replace(stored, etag=etag)

    def replace(self, stored: Stored[R]) -> Stored[R]:
        """Write `stored` if the blob is unchanged since its ETag was read; raises PreconditionFailed otherwise."""
        return dataclasses.replace(stored, etag=self._write(stored, if_match=stored.etag))

    def put(self, key: Key[R], record: R) -> Stored[R]:
        """Unconditional write, for records that have one writer."""
        stored = Stored(key, record, "")
        return dataclasses.replace(stored, etag=self._write(stored))

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

    def _write(self, stored: Stored[Any], *, if_none_match: bool = False, if_match: str | None = None) -> str:
        """Write the record, tagged `open` in the same request while it is open work of an indexed kind."""
        tags = (
            {OPEN_TAG: prefix.tag}
            if (prefix := keys.INDEXED.get(stored.key.kind)) and is_open(stored)
            else None
        )
        data = encode(stored)
        return self._blobs.write(
            self._container,
            _name(stored.key),
            data,
            if_none_match=if_none_match,
            if_match=if_match,
            tags=tags,
        )

    def open(self, prefix: Prefix[R]) -> Iterator[Stored[R]]:
        """The open records of an indexed kind, from the index: what is settled is neither listed nor read. The
        index trails the writes, so a record opened a moment ago may come at the next tick, and one settled a
        moment ago is read and left out here."""
        for name in self._blobs.find(self._container, OPEN_TAG, prefix.tag):
            if not name.startswith(prefix.path) or not name.endswith(".json"):
                continue
            stored = self.get(Key(name.removesuffix(".json"), prefix.kind))
            if stored is not None and is_open(stored):
                yield stored

    def delete(self, key: Key[R], stored: Stored[R] | None = None) -> None:
        """Delete; given the `stored` record read earlier, only if unchanged since (else PreconditionFailed)."""
        self._blobs.delete(self._container, _name(key), if_match=stored.etag if stored else None)

    def reindex(self, prefix: Prefix[R]) -> int:
        """Tag the open records under `prefix` that were written before the index existed (once, on upgrade:
        this lists the history); the number tagged."""
        tagged = 0
        for stored in self.list(prefix):
            if is_open(stored):
                try:
                    self.replace(stored)
                except PreconditionFailed:
                    continue  # changed meanwhile: that write tagged it
                tagged += 1
        return tagged

    def list(self, prefix: Prefix[R]) -> Iterator[Stored[R]]:
        for info in self._blobs.list(self._container, prefix.path):
            stored = self._cached(info, prefix)
            if stored is not None:
                yield stored

    def page(self, prefix: Prefix[R], marker: str | None, limit: int) -> tuple[list[Stored[R]], str | None]:
        """One page of the records under `prefix` from `marker`, and the next page's marker (None after the
        last); a record read before and unchanged since is not read again."""
        infos, following = self._blobs.list_page(self._container, prefix.path, marker=marker, limit=limit)
        return [stored for info in infos if (stored := self._cached(info, prefix)) is not None], following

    def listed(self, prefix: Prefix[R], limit: int) -> list[tuple[Key[R], BlobInfo]]:
        """The first `limit` keys under `prefix` with their blobs' properties, from one listing: none is read."""
        infos, _ = self._blobs.list_page(self._container, prefix.path, limit=limit)
        return [(Key(info.name.removesuffix(".json"), prefix.kind), info) for info in infos]

    def _cached(self, info: BlobInfo, prefix: Prefix[R]) -> Stored[R] | None:
        key = Key(info.name.removesuffix(".json"), prefix.kind)
        with self._lock:
            cached = self._seen.get(key.path)
        if cached is not None and cached.etag == info.etag:
            return cached  # records are frozen: nobody changes one that was read
        stored = self.get(key)
        if stored is not None:
            self._remember(stored)
        return stored

    def _remember(self, stored: Stored[Any]) -> None:
        with self._lock:
            self._seen[stored.key.path] = stored
            self._seen.move_to_end(stored.key.path)
            while len(self._seen) > self._cache_size:
                self._seen.popitem(last=False)


OPEN_TAG = "open"


def is_open(stored: Stored[Any]) -> bool:
    """Work a handler or a tick may still do on the record: leased, decisions not yet in the audit log, failed
    attempts, or its kind's own test (a file not final, a run in flight, ...). A stuck record is set aside."""
    if stored.stuck is not None:
        return False
    prefix = keys.INDEXED.get(stored.key.kind)
    if prefix is None:
        return False
    pending = stored.lease is not None or bool(stored.outbox) or stored.failures is not None
    return pending or bool(prefix.open_when and prefix.open_when(stored.record))


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
