"""How a handler changes a leased record so that crashes and concurrent workers change nothing twice.

    with lease(deps, keys.run(run_id)) as held:
        if held is None:
            return                       # absent, or another live worker has it in hand
        held.change(replace(held.record, status=RunStatus.RUNNING), decision(...))

- Entering takes the record's lease (an ETag-guarded write of a `Lease`), or creates the record already leased
  (`create=`: a function that builds it, called only when the record does not exist). Another live worker
  holding the lease means the work is in hand: the duplicate delivery does nothing. A lease whose worker crashed
  expires, and the next delivery or `reconcile` tick takes over.
- Decisions go into the record's outbox in the same conditional write as the change they explain (`change`),
  and are then recorded in the audit log by key (`flush`, and on leaving), so a crash between the two loses no
  entry and a retry writes none twice.
- Before each external effect (a job submitted, a model registered) the holder calls `renew`: the lease is
  extended by an ETag-guarded write, or `LeaseLost` is raised when another worker took the record over while
  this one was slow (its lease expired); a worker that lost its lease stops before acting twice.
- `fresh=True` (a record most likely new, as a landed file's) builds and creates it before looking, saving the
  read; `finish` is the last change and the lease's give-back in one write, so a handler that creates a record
  and finishes it writes it twice.
- Leaving normally records the outbox and gives the lease back in one write. Leaving with an error gives the
  lease back so the retry the error causes can take over at once (a process that dies gives nothing back: its
  lease expires).
- Poison is set aside. Leaving with an error, or taking over a lease its worker never gave back, counts a failed
  attempt on the record (`Stored.failures`); leaving normally clears the count. A record that failed
  `MLOPS_MAX_ATTEMPTS` times in a row, or is still failing `MLOPS_STUCK_AFTER_SECONDS` after its first failure,
  is marked `stuck` (with an audit entry naming the last error): no delivery or tick takes its lease again, so
  it stops costing every tick and blocking what comes after it. `release_stuck` hands it back to the handlers.

This is the only way handlers change a leased record (landed files, runs, releases). Records without a lease
are created once (causes, catalog entries, the frozen schema) or changed by one compare-and-swap
(`StateStore.update`: the catalog's first dataset version, a drift cooldown) through the stores beside this one.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from shared.config import Settings
from shared.ports import PreconditionFailed
from shared.state.audit import AuditLog
from shared.state.keys import Key
from shared.state.store import Decision, Failures, Lease, StateStore, Stored, Stuck

R = TypeVar("R")
LEASE_SECONDS = 120
ACQUIRE_ATTEMPTS = 5
STUCK_ACTOR = "retry_limit"

log = logging.getLogger(__name__)

Creation = tuple[R, tuple[Decision, ...]]


class LeaseLost(PreconditionFailed):
    """Another worker took the record over (this worker's lease expired while it was slow): stop, act no more."""


class Deps(Protocol):
    """What a lease needs of the dependency container (`shared.deps.Deps` has it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def state(self) -> StateStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...


class Held(Generic[R]):
    """A record this worker holds the lease on. Every change to it goes through here."""

    def __init__(self, deps: Deps, stored: Stored[R]) -> None:
        self._deps = deps
        self._stored = stored
        self.finished = False

    @property
    def record(self) -> R:
        return self._stored.record

    @property
    def key(self) -> Key[R]:
        return self._stored.key

    @property
    def owner(self) -> str:
        assert self._stored.lease is not None
        return self._stored.lease.owner

    def change(self, record: R, *decisions: Decision) -> None:
        """Replace the record and queue `decisions` in one conditional write (PreconditionFailed if we lost)."""
        outbox = (*self._stored.outbox, *_stamp(decisions, self._deps.clock()))
        self._write(dataclasses.replace(self._stored, record=record, outbox=outbox))

    def renew(self) -> None:
        """Extend the lease by LEASE_SECONDS from now, right before an external effect; LeaseLost if another
        worker changed the record since this one last wrote it (it took the expired lease over)."""
        extended = Lease(self.owner, (self._deps.clock() + timedelta(seconds=LEASE_SECONDS)).isoformat())
        self._write(dataclasses.replace(self._stored, lease=extended))

    def finish(self, record: R, *decisions: Decision) -> None:
        """The last change: record the outbox (with `decisions`) in the audit log, then write `record` with the
        lease given back, in one write (the handling succeeded, so no failures remain). Leaving the lease
        afterwards writes nothing more; leaving without it does this for the record as it stands."""
        outbox = (*self._stored.outbox, *_stamp(decisions, self._deps.clock()))
        _record(self._deps, outbox)
        final = dataclasses.replace(self._stored, record=record, outbox=(), lease=None, failures=None)
        self._write(final)
        self.finished = True

    def flush(self) -> None:
        """Record the queued decisions in the audit log now (each once, by key) and empty the outbox."""
        if self._stored.outbox:
            _record(self._deps, self._stored.outbox)
            self._write(dataclasses.replace(self._stored, outbox=()))

    def _write(self, stored: Stored[R]) -> None:
        try:
            self._stored = self._deps.state.replace(stored)
        except PreconditionFailed as lost:
            raise LeaseLost(f"state/{self.key}: another worker took the lease over") from lost


@contextmanager
def lease(
    deps: Deps,
    key: Key[R],
    *,
    create: Callable[[], Creation[R] | None] | None = None,
    fresh: bool = False,
    settled: Callable[[R], bool] | None = None,
) -> Iterator[Held[R] | None]:
    """This worker's lease on the record at `key`, or None when it is absent (and `create` is not given or
    builds nothing) or another live worker holds it. `fresh`: the record is most likely new, so it is built and
    created without looking first (one write, not a read and a write); one that exists after all is then read
    and leased as any other. `settled`: a record it holds true of, with nothing left in its outbox, needs no
    more work and is not leased (None: a duplicate delivery of finished work reads it and writes nothing)."""
    made = create() if fresh and create is not None else None
    stored = _create_leased(deps, key, made) if made is not None else None
    if stored is None:
        stored = _acquire(deps, key, None if fresh else create, settled)
    if stored is None:
        yield None
        return
    held = Held(deps, stored)
    try:
        yield held
    except Exception as error:
        _abandon(deps, key, held.owner, f"{type(error).__name__}: {error}")
        raise
    if not held.finished:
        held.finish(held.record)


def decision(actor: str, action: str, subject: str, key: str, **detail: Any) -> Decision:
    return Decision(actor, action, subject, key, detail)


def needs_attention(stored: Stored[Any], now: datetime) -> bool:
    """An unflushed outbox, an expired lease or a failed attempt: work a crashed or failing worker left for
    `reconcile` (unless it is stuck)."""
    if stored.stuck is not None:
        return False
    return not leased_by_other(stored, now) and bool(stored.outbox or stored.lease or stored.failures)


def release_stuck(deps: Deps, key: Key[Any], actor: str) -> bool:
    """Hand a stuck record back to the handlers (after its cause was fixed); False if it was not stuck."""
    for _ in range(ACQUIRE_ATTEMPTS):
        current = deps.state.get(key)
        if current is None or current.stuck is None:
            return False
        try:
            deps.state.replace(dataclasses.replace(current, stuck=None, failures=None, lease=None))
        except PreconditionFailed:
            continue
        deps.audit.record(
            actor,
            "record.released",
            key.path,
            key=f"{key.path}:released:{current.stuck.at}",
            stuck_since=current.stuck.at,
            reason=current.stuck.reason,
        )
        return True
    raise PreconditionFailed(f"state/{key}: too much contention")


def leased_by_other(stored: Stored[Any], now: datetime) -> bool:
    return stored.lease is not None and datetime.fromisoformat(stored.lease.until) > now


def _create_leased(deps: Deps, key: Key[R], made: Creation[R]) -> Stored[R] | None:
    """Create the record already leased, its decisions in the outbox; None if it exists."""
    record, decisions = made
    now = deps.clock()
    return deps.state.create(key, record, lease=_new_lease(now), outbox=_stamp(decisions, now))


def _acquire(
    deps: Deps,
    key: Key[R],
    create: Callable[[], Creation[R] | None] | None,
    settled: Callable[[R], bool] | None = None,
) -> Stored[R] | None:
    for _ in range(ACQUIRE_ATTEMPTS):
        current = deps.state.get(key)
        if current is not None and settled is not None and settled(current.record) and not current.outbox:
            return None
        if current is None:
            made = create() if create is not None else None
            if made is None:
                return None
            created = _create_leased(deps, key, made)
            if created is not None:
                return created
            create = None  # a concurrent worker created it first: take its lease like any other record
            continue
        now = deps.clock()
        if current.stuck is not None or leased_by_other(current, now):
            return None
        failures = current.failures
        if current.lease is not None:  # its worker stopped before giving it back: that attempt failed
            failures = _failed(failures, now, "the worker handling it stopped before finishing")
            if _exhausted(failures, now, deps.settings):
                try:
                    _set_aside(deps, dataclasses.replace(current, failures=failures))
                except PreconditionFailed:
                    continue
                return None
        try:
            return deps.state.replace(dataclasses.replace(current, lease=_new_lease(now), failures=failures))
        except PreconditionFailed:
            continue
    return None


def _abandon(deps: Deps, key: Key[Any], owner: str, error: str) -> None:
    """Give the lease back after a failed attempt, counting it; set the record aside if it keeps failing."""
    try:
        for _ in range(ACQUIRE_ATTEMPTS):
            current = deps.state.get(key)
            if current is None or current.lease is None or current.lease.owner != owner:
                return
            now = deps.clock()
            failed = dataclasses.replace(current, lease=None, failures=_failed(current.failures, now, error))
            try:
                if _exhausted(failed.failures, now, deps.settings):
                    _set_aside(deps, failed)
                else:
                    deps.state.replace(failed)
                return
            except PreconditionFailed:
                continue
    except Exception:  # the store is failing too (often the very error being raised): the lease expires
        log.warning("could not give a lease back; it expires", extra={"key": key.path}, exc_info=True)


def _failed(failures: Failures | None, now: datetime, error: str) -> Failures:
    since = failures.since if failures is not None else now.isoformat()
    return Failures((failures.count if failures is not None else 0) + 1, since, error[:500])


def _exhausted(failures: Failures | None, now: datetime, settings: Settings) -> bool:
    if failures is None:
        return False
    failing_for = (now - datetime.fromisoformat(failures.since)).total_seconds()
    return failures.count >= settings.work.max_attempts or failing_for >= settings.work.stuck_after_seconds


def _set_aside(deps: Deps, stored: Stored[Any]) -> None:
    """Mark the record stuck (PreconditionFailed if it changed meanwhile); the audit entry comes first, by key,
    so a crash between the two leaves the entry and the next attempt writes the mark."""
    failures = stored.failures
    assert failures is not None
    now = deps.clock().isoformat()
    reason = f"failed {failures.count} times since {failures.since}; last: {failures.last}"
    deps.audit.record(
        STUCK_ACTOR,
        "record.stuck",
        stored.key.path,
        key=f"{stored.key.path}:stuck:{failures.since}",
        attempts=failures.count,
        since=failures.since,
        error=failures.last,
        status=str(getattr(stored.record, "status", "")),
    )
    deps.state.replace(dataclasses.replace(stored, lease=None, stuck=Stuck(now, reason, failures.count)))
    log.error("record set aside as stuck", extra={"key": stored.key.path, "reason": reason})


def _record(deps: Deps, outbox: tuple[Decision, ...]) -> None:
    for item in outbox:
        deps.audit.record(item.actor, item.action, item.subject, key=item.key, **item.detail)


def _new_lease(now: datetime) -> Lease:
    return Lease(owner=uuid.uuid4().hex, until=(now + timedelta(seconds=LEASE_SECONDS)).isoformat())


def _stamp(decisions: tuple[Decision, ...], now: datetime) -> tuple[Decision, ...]:
    return tuple(dataclasses.replace(d, at=now.isoformat()) for d in decisions)
