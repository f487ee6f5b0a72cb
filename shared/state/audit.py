"""The audit log: every decision as one immutable entry, chained to the previous one by SHA-256.

Entry n is the blob `entries/{n:010d}.json`, created with if-none-match: of two concurrent writers exactly
one gets number n, and the other chains its entry to the winner's as n + 1. Creation of a new blob is the one
conditional operation that is atomic on Azure Storage and on Azurite alike, which conditional appends to a
single append blob are not on Azurite. `verify` recomputes the whole chain.

A decision recorded with a `key` is recorded once: a retry after a crash finds the entry by its key (a marker
blob, or, if the writer died between marker and entry, a look back over the entries written since the marker)
instead of writing it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.ports import BlobStore, PreconditionFailed

log = logging.getLogger(__name__)

GENESIS = "0" * 64
CLOCK_SKEW_SECONDS = 5
PREFIX = "entries/"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    prev: str
    hash: str
    key: str | None = None


class AuditLog:
    def __init__(self, blobs: BlobStore, container: str, clock: Callable[[], datetime]) -> None:
        self._blobs = blobs
        self._container = container
        self._clock = clock
        self._tail: tuple[int, str] | None = None  # (seq, hash) of the newest entry this process knows
        self._lock = threading.Lock()

    def record(
        self,
        actor: str,
        action: str,
        subject: str,
        *,
        key: str | None = None,
        **detail: Any,
    ) -> AuditEntry:
        """Append one decision. `actor` is the function or person, `action` what was decided, about `subject`.

        With `key`, at most once per key: a second call returns the first call's entry."""
        with self._lock:
            if key is not None:
                found = self._claim_key(key)
                if found is not None:
                    return found
            seq, prev = self._current_tail()
            for _ in range(1000):
                body = {
                    "seq": seq + 1,
                    "time": self._clock().isoformat(),
                    "actor": actor,
                    "action": action,
                    "subject": subject,
                    "detail": json.loads(json.dumps(detail, default=str)),
                    "prev": prev,
                }
                if key is not None:
                    body["key"] = key
                digest = _digest(body)
                try:
                    self._blobs.write(
                        self._container, _name(seq + 1), _dump({**body, "hash": digest}), if_none_match=True
                    )
                except PreconditionFailed:
                    seq, prev = self._advance(seq + 1)  # another writer took this number: chain after it
                    continue
                self._tail = (seq + 1, digest)
                if key is not None:
                    self._blobs.write(
                        self._container, _key_name(key), _dump({"seq": seq + 1, "at": body["time"]})
                    )
                log.info("audit %s %s %s", actor, action, subject, extra={"audit_action": action})
                return AuditEntry(hash=digest, **body)
        raise PreconditionFailed("audit log: too much contention")

    def entries(self) -> list[AuditEntry]:
        names = sorted(info.name for info in self._blobs.list(self._container, PREFIX))
        found = []
        for name in names:
            blob = self._blobs.read(self._container, name)
            if blob is not None:
                found.append(AuditEntry(**json.loads(blob.data)))
        return found

    def verify(self) -> list[str]:
        """Problems with the chain; an empty list means every entry is intact, numbered and in order."""
        problems: list[str] = []
        prev = GENESIS
        for index, entry in enumerate(self.entries(), start=1):
            body = {k: v for k, v in vars(entry).items() if k != "hash" and not (k == "key" and v is None)}
            if entry.seq != index:
                problems.append(f"entry {index} has seq {entry.seq}")
            if entry.prev != prev:
                problems.append(f"entry {entry.seq} does not chain to the previous entry")
            if _digest(body) != entry.hash:
                problems.append(f"entry {entry.seq} was altered")
            prev = entry.hash
        return problems

    def _claim_key(self, key: str) -> AuditEntry | None:
        """The entry already recorded under `key`, or None after marking the key as being recorded now.

        The marker is written before the entry and completed after it. A marker still pending means a writer
        died in between: only then is the log searched, back over the entries written since the marker."""
        name = _key_name(key)
        try:
            self._blobs.write(
                self._container, name, _dump({"at": self._clock().isoformat()}), if_none_match=True
            )
            return None
        except PreconditionFailed:
            marker = json.loads(self._blobs.read(self._container, name).data)
        if "seq" in marker:
            return self._entry(_name(marker["seq"]))
        horizon = (datetime.fromisoformat(marker["at"]) - timedelta(seconds=CLOCK_SKEW_SECONDS)).isoformat()
        seq, _ = self._current_tail()
        while seq > 0:
            entry = self._entry(_name(seq))
            if entry is None or entry.time < horizon:
                return None
            if entry.key == key:
                return entry
            seq -= 1
        return None

    def _current_tail(self) -> tuple[int, str]:
        seq, digest = self._tail or self._find_tail()
        if seq and self._blobs.info(self._container, _name(seq + 1)) is not None:
            return self._advance(seq + 1)
        return seq, digest

    def _entry(self, name: str) -> AuditEntry | None:
        blob = self._blobs.read(self._container, name)
        return None if blob is None else AuditEntry(**json.loads(blob.data))

    def _find_tail(self) -> tuple[int, str]:
        names = sorted(info.name for info in self._blobs.list(self._container, PREFIX))
        if not names:
            return 0, GENESIS
        return self._read(names[-1])

    def _advance(self, seq: int) -> tuple[int, str]:
        """Skip to the newest entry from `seq` on (it exists)."""
        current = self._read(_name(seq))
        while self._blobs.info(self._container, _name(current[0] + 1)) is not None:
            current = self._read(_name(current[0] + 1))
        return current

    def _read(self, name: str) -> tuple[int, str]:
        blob = self._blobs.read(self._container, name)
        if blob is None:
            raise PreconditionFailed(f"audit entry {name} vanished")
        entry = json.loads(blob.data)
        return int(entry["seq"]), str(entry["hash"])


def _key_name(key: str) -> str:
    return f"keys/{hashlib.sha256(key.encode()).hexdigest()}.json"


def _name(seq: int) -> str:
    return f"{PREFIX}{seq:010d}.json"


def _dump(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True).encode()


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
