"""The audit log: every decision as one immutable entry, chained to the previous one by SHA-256.

Entry n is the blob `entries/{n:010d}.json`, created with if-none-match: of two concurrent writers exactly
one gets number n, and the other chains its entry to the winner's as n + 1. Creation of a new blob is the one
conditional operation that is atomic on Azure Storage and on Azurite alike, which conditional appends to a
single append blob are not on Azurite. `verify` recomputes the whole chain.

A write whose response was lost may have landed: a create refused because the entry exists is read back, and
an entry that is the one being written (same hash, or same key) counts as written, not as a lost race.

A decision recorded with a `key` is recorded once, also when one event reaches two instances at once or a
retry follows a crash or a lost response. The key's marker blob, created with if-none-match, names the entry
number reserved for the key; whoever records the key writes that number, so of two concurrent writers one
creates the entry and the other finds it. Only when another decision took the number first is the marker
moved, with if-match, to the next free number.

What it costs: an entry is one create, a keyed entry two (the marker, then the entry), when the number this
process knows to be next is free; a number another instance took first costs a refused create and a step on.
No write reads the log: a process finds the tail once, from a checkpoint written every `CHECKPOINT_EVERY`
entries and a few probes of entry numbers (never a listing), and `recent` reads only the entries it returns.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.ports import Blob, BlobStore, PreconditionFailed

log = logging.getLogger(__name__)

GENESIS = "0" * 64
CLOCK_SKEW_SECONDS = 5
PREFIX = "entries/"
CHECKPOINT = "tail.json"  # the number of a recent entry: where finding the tail starts
CHECKPOINT_EVERY = 1000
ATTEMPTS = 1000


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

        With `key`, at most once per key: a second call, concurrent or later, returns the first call's entry."""
        decision = {
            "actor": actor,
            "action": action,
            "subject": subject,
            "detail": json.loads(json.dumps(detail, default=str)),
        }
        with self._lock:
            entry = self._append(decision) if key is None else self._record_once(key, decision)
        log.info("audit %s %s %s", actor, action, subject, extra={"audit_action": action})
        return entry

    def entries(self) -> list[AuditEntry]:
        names = sorted(info.name for info in self._blobs.list(self._container, PREFIX))
        found = []
        for name in names:
            blob = self._blobs.read(self._container, name)
            if blob is not None:
                found.append(AuditEntry(**json.loads(blob.data)))
        return found

    def verify(self) -> list[str]:
        """Problems with the chain; an empty list means every entry is intact, numbered and in order, and no
        key is recorded twice."""
        problems: list[str] = []
        prev = GENESIS
        keyed: dict[str, list[int]] = defaultdict(list)
        for index, entry in enumerate(self.entries(), start=1):
            body = {k: v for k, v in vars(entry).items() if k != "hash" and not (k == "key" and v is None)}
            if entry.seq != index:
                problems.append(f"entry {index} has seq {entry.seq}")
            if entry.prev != prev:
                problems.append(f"entry {entry.seq} does not chain to the previous entry")
            if _digest(body) != entry.hash:
                problems.append(f"entry {entry.seq} was altered")
            if entry.key is not None:
                keyed[entry.key].append(entry.seq)
            prev = entry.hash
        for key, seqs in keyed.items():
            if len(seqs) > 1:
                numbers = ", ".join(str(seq) for seq in seqs)
                problems.append(f"key {key} recorded {len(seqs)} times (entries {numbers})")
        return problems

    def recent(self, count: int) -> list[AuditEntry]:
        """The newest `count` entries, oldest first: found from the tail (with what other instances wrote since
        this one last looked), not by reading the log."""
        seq = self._advance_from(None)
        entries = (self._entry(_name(number)) for number in range(max(1, seq - count + 1), seq + 1))
        return [entry for entry in entries if entry is not None]

    # --- writing ----------------------------------------------------------------------------------------------

    def _append(self, decision: dict[str, Any]) -> AuditEntry:
        seq, prev = self._known_tail()
        for _ in range(ATTEMPTS):
            entry = self._entry_body(seq + 1, prev, decision, key=None)
            written = self._create(entry, mine=lambda stored, digest=entry.hash: stored.hash == digest)
            if written is not None:
                return written
            seq, prev = self._advance(seq + 1)  # another writer took this number: chain after it
        raise PreconditionFailed("audit log: too much contention")

    def _record_once(self, key: str, decision: dict[str, Any]) -> AuditEntry:
        """The key's marker is created first, naming the next number this process knows of (two writes, no
        read, when the key is new); only a marker that exists already is read and followed."""
        name = _key_name(key)
        seq, _ = self._known_tail()
        target = seq + 1
        etag = self._reserve(name, target, if_match=None)
        for _ in range(ATTEMPTS):
            if etag is None:  # the key has a marker: follow it
                marker = self._blobs.read(self._container, name)
                if marker is None:
                    target = self._known_tail()[0] + 1
                    etag = self._reserve(name, target, if_match=None)
                    continue
                target = json.loads(marker.data).get("seq")
                found = self._entry(_name(target)) if target else self._pending_search(key, marker)
                if found is not None and found.key == key:
                    return found
                etag = marker.info.etag
                if target is None or found is not None:
                    # The number is not (or no longer) free for this key: reserve the next free one.
                    target = self._advance_from(target) + 1
                    etag = self._reserve(name, target, if_match=etag)
                    if etag is None:
                        continue  # another writer moved the marker first: follow it again
            # The reserved number is free: write it, whoever else tries too; exactly one create succeeds.
            written = self._create(
                self._entry_body(target, self._hash_of(target - 1), decision, key=key),
                mine=lambda stored: stored.key == key,
            )
            if written is not None:
                return written
            # Another decision took the number: move the marker on to the next free one.
            target = self._advance_from(target) + 1
            etag = self._reserve(name, target, if_match=etag)
        raise PreconditionFailed(f"audit log: key {key} could not be recorded for contention")

    def _reserve(self, name: str, seq: int, *, if_match: str | None) -> str | None:
        """Point the key's marker at entry `seq`: created if `if_match` is None, else moved from that ETag. Its
        new ETag, or None when the condition failed (the marker exists, or moved meanwhile)."""
        body = _dump({"seq": seq, "at": self._clock().isoformat()})
        try:
            if if_match is None:
                return self._blobs.write(self._container, name, body, if_none_match=True)
            return self._blobs.write(self._container, name, body, if_match=if_match)
        except PreconditionFailed:
            return None

    def _create(self, entry: AuditEntry, mine: Callable[[AuditEntry], bool]) -> AuditEntry | None:
        """Create the entry's blob; the entry it holds now, or None if another decision took the number. A
        refusal is read back: a write whose response was lost landed, and another writer's entry for the same
        key is this one."""
        name = _name(entry.seq)
        body = {k: v for k, v in vars(entry).items() if not (k == "key" and v is None)}
        try:
            self._blobs.write(self._container, name, _dump(body), if_none_match=True)
        except PreconditionFailed:
            stored = self._entry(name)
            if stored is None or not mine(stored):
                return None
            entry = stored
        self._tail = max(self._tail or (0, GENESIS), (entry.seq, entry.hash))
        if entry.seq % CHECKPOINT_EVERY == 0:
            self._blobs.write(self._container, CHECKPOINT, _dump({"seq": entry.seq}))
        return entry

    def _entry_body(self, seq: int, prev: str, decision: dict[str, Any], key: str | None) -> AuditEntry:
        body = {"seq": seq, "time": self._clock().isoformat(), **decision, "prev": prev}
        if key is not None:
            body["key"] = key
        return AuditEntry(hash=_digest(body), **body)

    def _pending_search(self, key: str, marker: Blob) -> AuditEntry | None:
        """A marker without a number (written before markers carried one) whose writer may have died after
        its entry: look back over the entries written since the marker."""
        at = json.loads(marker.data)["at"]
        horizon = (datetime.fromisoformat(at) - timedelta(seconds=CLOCK_SKEW_SECONDS)).isoformat()
        seq = self._advance_from(None)
        while seq > 0:
            entry = self._entry(_name(seq))
            if entry is None or entry.time < horizon:
                return None
            if entry.key == key:
                return entry
            seq -= 1
        return None

    # --- reading ----------------------------------------------------------------------------------------------

    def _known_tail(self) -> tuple[int, str]:
        """The newest entry this process knows of (found once per process): a write at the number after it
        that another instance took first costs a refused create, never a wrong chain."""
        if self._tail is None:
            self._tail = self._find_tail()
        return self._tail

    def _hash_of(self, seq: int) -> str:
        if seq == 0:
            return GENESIS
        if self._tail is not None and self._tail[0] == seq:
            return self._tail[1]
        return self._read(_name(seq))[1]

    def _advance_from(self, seq: int | None) -> int:
        """The newest entry's number, looking on from entry `seq` (which exists) or from the known tail."""
        start = seq if seq else self._known_tail()[0]
        return self._advance(start)[0] if start else self._find_tail()[0]

    def _entry(self, name: str) -> AuditEntry | None:
        blob = self._blobs.read(self._container, name)
        return None if blob is None else AuditEntry(**json.loads(blob.data))

    def _exists(self, seq: int) -> bool:
        return self._blobs.info(self._container, _name(seq)) is not None

    def _find_tail(self) -> tuple[int, str]:
        """The newest entry without listing the log: from the last checkpoint (written every CHECKPOINT_EVERY
        entries), probe forward in doubling steps past the end, then halve back onto it. Entries are numbered
        without gaps, so this costs about 2 log2(CHECKPOINT_EVERY) probes however long the log is."""
        blob = self._blobs.read(self._container, CHECKPOINT)
        low = int(json.loads(blob.data)["seq"]) if blob is not None else 0
        if low and not self._exists(low):
            low = 0  # a checkpoint ahead of the log (the log was replaced): search from the start
        step = 1
        while self._exists(low + step):
            low, step = low + step, step * 2
        high = low + step  # absent
        while high - low > 1:
            middle = (low + high) // 2
            if self._exists(middle):
                low = middle
            else:
                high = middle
        return (0, GENESIS) if low == 0 else self._read(_name(low))

    def _advance(self, seq: int) -> tuple[int, str]:
        """Skip to the newest entry from `seq` on (it exists)."""
        current = self._read(_name(seq))
        while self._exists(current[0] + 1):
            current = self._read(_name(current[0] + 1))
        return current

    def _read(self, name: str) -> tuple[int, str]:
        blob = self._blobs.read(self._container, name)
        if blob is None:
            raise PreconditionFailed(f"audit entry {name} vanished")
        entry = json.loads(blob.data)
        return int(entry["seq"]), str(entry["hash"])


def _key_name(key: str) -> str:
    return f"keys/{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}.json"


def _name(seq: int) -> str:
    return f"{PREFIX}{seq:010d}.json"


def _dump(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True).encode()


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
