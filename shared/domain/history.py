"""What served production when, derived from the audit log's release decisions (pure).

The release handlers record `release.promoted` when a release takes production, and `release.rolled_back`
when one is rolled back (by hand, `requested_by` in its detail, or by a failed step); both name the release
(the subject) and its `model` ("name:version") and `deployment`. A promotion keeps the model it replaces as
the rollback target, and the target's own target behind it, so production is a stack: a promotion pushes,
rolling back the serving release pops and the one below serves again. Rolling back a release that never
served (a failed canary) changes nothing. `release.approved` names who approved a release before it served.

Entries are taken in chain order (`seq`), whatever order they come in; an entry whose fields are not what the
handlers write (a number where a name belongs, a model without a version, a time that is no time) is
counted as ignored, never guessed at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

PROMOTED = "release.promoted"
ROLLED_BACK = "release.rolled_back"
APPROVED = "release.approved"
ROLLING_BACK = "release.rolling_back"  # a failed step's reason, before the rollback it starts finishes


class Entry(Protocol):
    """What the derivation reads of an audit entry (shared.state.audit.AuditEntry has it)."""

    @property
    def seq(self) -> Any: ...
    @property
    def time(self) -> Any: ...
    @property
    def actor(self) -> Any: ...
    @property
    def action(self) -> Any: ...
    @property
    def subject(self) -> Any: ...
    @property
    def detail(self) -> Any: ...


@dataclass(frozen=True)
class Period:
    """One stretch of time one model version served production."""

    model: str
    version: str
    deployment: str | None
    release: str
    since: datetime
    until: datetime | None  # None: it still serves
    how: str  # "promoted", or "restored" by rolling back the release after it
    by: str  # who decided: the function that promoted, the person (or function) that rolled back
    approved_by: str | None = None
    reason: str | None = None  # why the rollback that restored it happened
    ended: str | None = None  # what ended it: "replaced by 3", "rolled back by alice"

    def covers(self, moment: datetime) -> bool:
        return self.since <= moment and (self.until is None or moment < self.until)

    def to_json(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        body["since"] = self.since.isoformat()
        body["until"] = self.until.isoformat() if self.until else None
        return body


@dataclass(frozen=True)
class History:
    periods: tuple[Period, ...]
    ignored: int  # entries about releases that could not be read

    def at(self, moment: datetime) -> Period | None:
        """The version serving at `moment` (aware), or None when nothing was in production then."""
        return next((p for p in reversed(self.periods) if p.covers(moment)), None)


@dataclass(frozen=True)
class _Decision:
    seq: int
    time: datetime
    action: str
    release: str
    name: str
    version: str
    deployment: str | None
    who: str
    reason: str | None


def derive(entries: Iterable[Entry], model: str) -> History:
    """The production timeline of `model` (its name), oldest first."""
    decisions, ignored = _decisions(entries, model)
    approvers: dict[str, str] = {}
    reasons: dict[str, str] = {}
    stack: list[Period] = []  # the serving period on top, the rollback targets below it
    done: list[Period] = []
    for decision in decisions:
        current = stack[-1] if stack else None
        if decision.action == APPROVED:
            approvers[decision.release] = decision.who
        elif decision.action == ROLLING_BACK:
            if decision.reason:
                reasons[decision.release] = decision.reason
        elif decision.action == PROMOTED:
            if current is not None and current.release == decision.release:
                continue  # the same promotion recorded again: it serves already
            if current is not None:
                done.append(_end(current, decision.time, f"replaced by {decision.version}"))
            stack.append(
                Period(
                    decision.name,
                    decision.version,
                    decision.deployment,
                    decision.release,
                    decision.time,
                    None,
                    "promoted",
                    decision.who,
                    approved_by=approvers.get(decision.release),
                )
            )
        elif current is not None and current.release == decision.release:  # the serving one rolled back
            done.append(_end(current, decision.time, f"rolled back by {decision.who}"))
            stack.pop()
            if stack:
                target = stack.pop()
                stack.append(
                    dataclasses.replace(
                        target,
                        since=decision.time,
                        until=None,
                        how="restored",
                        by=decision.who,
                        approved_by=None,
                        reason=decision.reason or reasons.get(decision.release),
                        ended=None,
                    )
                )
    if stack:
        done.append(stack[-1])
    return History(tuple(done), ignored)


def _end(period: Period, moment: datetime, why: str) -> Period:
    return dataclasses.replace(period, until=max(moment, period.since), ended=why)


def _decisions(entries: Iterable[Entry], model: str) -> tuple[list[_Decision], int]:
    found: list[_Decision] = []
    ignored = 0
    for entry in entries:
        action = getattr(entry, "action", None)
        if action not in (PROMOTED, ROLLED_BACK, APPROVED, ROLLING_BACK):
            continue
        decision = _read(entry, action)
        if decision is None:
            ignored += 1
        elif decision.name == model:
            found.append(decision)
    return sorted(found, key=lambda d: d.seq), ignored


def _read(entry: Entry, action: str) -> _Decision | None:
    seq, detail = getattr(entry, "seq", None), getattr(entry, "detail", None)
    release, actor = getattr(entry, "subject", None), getattr(entry, "actor", None)
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(detail, dict):
        return None
    moment = parse_time(getattr(entry, "time", None))
    named = detail.get("model")
    if moment is None or not isinstance(release, str) or not release or not isinstance(named, str):
        return None
    name, _, version = named.rpartition(":")
    if not name or not version:
        return None
    deployment = detail.get("deployment")
    actor = actor if isinstance(actor, str) and actor else "unknown"
    who_key = {APPROVED: "approver", ROLLED_BACK: "requested_by"}.get(action)
    who = detail.get(who_key) if who_key else None
    reason = detail.get("reason")
    return _Decision(
        seq,
        moment,
        action,
        release,
        name,
        version,
        deployment if isinstance(deployment, str) and deployment else None,
        who if isinstance(who, str) and who else actor,
        reason if isinstance(reason, str) and reason else None,
    )


def parse_time(value: Any) -> datetime | None:
    """An audit entry's time (ISO 8601, as the clock writes it) as an aware datetime; naive counts as UTC."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
