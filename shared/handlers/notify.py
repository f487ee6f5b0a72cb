"""Notifications: each event of ours worth a person's attention goes to every webhook of `MLOPS_NOTIFY_URLS`.

    event --(cooldown of its kind)--> one delivery record per (event, webhook) --(a few quick calls)-->
        delivered | pending --(reconcile tick, doubling waits)--> delivered | given up

- Deduplicated by event id: a delivery is a leased record keyed by the event id and the URL's digest
  (`keys.delivery`), so a redelivered event, or one handled by two instances at once, calls each webhook once.
- A cooldown per kind (`MLOPS_NOTIFY_COOLDOWNS`): an event of a kind in its cooldown is held back, counted and
  recorded; the next one sent of that kind says how many were.
- A failing or slow webhook never fails the event's handling: the calls are bounded by a timeout each and a
  budget for the whole event, and what did not get through is left pending for `retry_deliveries`, the tick's
  step, which calls again with doubling waits and gives up after `MLOPS_NOTIFY_MAX_RETRIES`, in the audit log.
  A receiver's 4xx (but 408 and 429) is final: it would refuse the same body again.

The files quarantined are announced per burst: the landing flow leaves one note per quarantined file, and the
tick's `summarise_quarantined` publishes one `MLOps.FilesQuarantined` once the burst is over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections import Counter
from datetime import datetime, timedelta

from shared.deps import Deps
from shared.domain.messages import Envelope
from shared.domain.notifications import (
    MAX_ITEMS,
    Kind,
    kind_of,
    label_of,
    notification,
    render,
    retry_delay,
    storable,
)
from shared.handlers.isolation import each
from shared.ports import OutgoingEvent, WebhookError
from shared.state import keys
from shared.state.lease import Held, decision, lease, leased_by_other
from shared.state.records import Delivery, DeliveryStatus, NotifyCooldown
from shared.state.store import Decision, Stored

log = logging.getLogger(__name__)
ACTOR = "on_notify"
FILES_QUARANTINED = "MLOps.FilesQuarantined"
SUMMARY_PAGE = 1000  # quarantine notes one summary covers; more wait for the next
REASONS_READ = 20  # notes read for the summary's reasons (the count needs none read)
_RETRYABLE_4XX = (408, 429)


def on_notify(envelope: Envelope, deps: Deps, actor: str = ACTOR) -> None:
    """Notify every configured webhook of `envelope`, unless its kind is in its cooldown. Returns normally
    whatever the webhooks do; only the state store failing raises (so Event Grid delivers the event again)."""
    settings = deps.settings.notify
    kind = kind_of(envelope.event_type)
    if kind is None or not settings.urls:
        return
    suppressed = _cooldown(kind, envelope.id, deps, actor)
    if suppressed is None:
        return
    deadline = time.monotonic() + settings.budget_seconds
    for url in settings.urls:
        target = keys.url_digest(url)

        def create(url: str = url, target: str = target) -> tuple[Delivery, tuple[Decision, ...]]:
            return Delivery(
                event_id=envelope.id,
                event_type=envelope.event_type,
                subject=envelope.subject,
                time=envelope.time.isoformat(),
                data=storable(envelope.data),
                target=target,
                host=label_of(url),
                suppressed=suppressed,
                next_at=deps.clock().isoformat(),
            ), ()

        key = keys.delivery(envelope.id, target)
        with lease(deps, key, create=create, fresh=True, settled=_settled) as held:
            if held is not None and held.record.status is DeliveryStatus.PENDING:
                _call(held, url, deps, actor, settings.attempts, deadline, by_tick=False)


def retry_deliveries(deps: Deps, actor: str = "reconcile") -> int:
    """The tick's step: call again each pending delivery whose wait is over, once, within the budget."""
    settings = deps.settings.notify
    urls = {keys.url_digest(url): url for url in settings.urls}
    deadline = time.monotonic() + settings.budget_seconds
    now = deps.clock()

    def due(stored: Stored[Delivery]) -> bool:
        next_at = stored.record.next_at
        if stored.stuck is not None or leased_by_other(stored, now):
            return False
        return next_at is None or datetime.fromisoformat(next_at) <= now

    def retry(stored: Stored[Delivery]) -> bool:
        if time.monotonic() >= deadline:
            return False  # the next tick goes on
        with lease(deps, stored.key, settled=_settled) as held:
            if held is None or held.record.status is not DeliveryStatus.PENDING:
                return False
            url = urls.get(held.record.target)
            if url is None:
                _give_up(held, deps, actor, "the webhook is no longer in MLOPS_NOTIFY_URLS")
            else:
                _call(held, url, deps, actor, 1, deadline, by_tick=True)
        return True

    pending = (stored for stored in deps.state.open(keys.DELIVERIES) if due(stored))
    return each(pending, retry, lambda stored: stored.key.path)


def _settled(delivery: Delivery) -> bool:
    return delivery.status is not DeliveryStatus.PENDING


def _call(
    held: Held[Delivery], url: str, deps: Deps, actor: str, attempts: int, deadline: float, *, by_tick: bool
) -> None:
    """Up to `attempts` calls while the budget lasts; the record leaves delivered, given up or pending."""
    settings = deps.settings.notify
    record = held.record
    note = notification(
        id=record.event_id,
        event_type=record.event_type,
        subject=record.subject,
        time=record.time,
        data=record.data,
        public_url=settings.public_url,
        suppressed=record.suppressed,
    )
    if note is None:  # an event type that was a kind when the record was made and is not now
        _give_up(held, deps, actor, f"{record.event_type} is not a notification kind")
        return
    body, headers = render(note, url, settings.secret)
    calls, error, final = 0, "", False
    for attempt in range(attempts):
        remaining = deadline - time.monotonic()
        if attempt and settings.pause_seconds:
            time.sleep(min(settings.pause_seconds * 2 ** (attempt - 1), max(0.0, remaining)))
            remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        calls += 1
        try:
            status = deps.webhooks.post(url, body, headers, min(settings.timeout_seconds, remaining))
        except WebhookError as failure:
            error = str(failure)[:300]
            continue
        if 200 <= status < 300:
            delivered = dataclasses.replace(
                record, status=DeliveryStatus.DELIVERED, calls=record.calls + calls, last_error=""
            )
            held.finish(delivered, _decision(actor, "notify.delivered", record, calls=delivered.calls))
            return
        error = f"HTTP {status}"
        if 400 <= status < 500 and status not in _RETRYABLE_4XX:
            final = True
            break
    log.warning(
        "notification not delivered",
        extra={"event_id": record.event_id, "webhook": record.host, "reason": error or "no time left"},
    )
    record = dataclasses.replace(
        record,
        calls=record.calls + calls,
        retries=record.retries + (1 if by_tick else 0),
        last_error=error or record.last_error or "no time left in this event's budget",
    )
    if final:
        _give_up(held, deps, actor, f"the webhook refused it ({error})", record)
    elif record.retries >= settings.max_retries:
        _give_up(held, deps, actor, f"{record.calls} calls failed, the last with {record.last_error}", record)
    else:
        wait = retry_delay(record.retries + 1, settings.retry_seconds)
        next_at = (deps.clock() + timedelta(seconds=wait)).isoformat()
        pending = dataclasses.replace(record, next_at=next_at)
        held.finish(
            pending,
            _decision(
                actor,
                "notify.retrying",
                pending,
                key_part=f"retrying:{pending.retries}",
                error=pending.last_error,
                next_at=next_at,
            ),
        )


def _give_up(
    held: Held[Delivery], deps: Deps, actor: str, reason: str, record: Delivery | None = None
) -> None:
    record = dataclasses.replace(record or held.record, status=DeliveryStatus.GIVEN_UP, next_at=None)
    held.finish(record, _decision(actor, "notify.given_up", record, reason=reason, calls=record.calls))


def _decision(actor: str, action: str, record: Delivery, key_part: str = "", **detail: object) -> Decision:
    key = keys.delivery(record.event_id, record.target)
    return decision(
        actor,
        action,
        record.event_id,
        f"{key}:{key_part or action}",
        webhook=record.host,
        event_type=record.event_type,
        **detail,
    )


# --- cooldowns ----------------------------------------------------------------------------------------------------


def _cooldown(kind: Kind, event_id: str, deps: Deps, actor: str) -> int | None:
    """None when `event_id` is held back by its kind's cooldown (counted and recorded); else how many of its
    kind were held back since the last one sent, to be said in this one."""
    seconds = deps.settings.notify.cooldowns.get(kind.value, 0.0)
    if seconds <= 0:
        return 0
    now = deps.clock()
    outcome: list[int | None] = [0]

    def change(current: NotifyCooldown | None) -> NotifyCooldown | None:
        if current is not None and current.event == event_id:
            outcome[0] = current.carried  # a redelivery of the one sent: the same words
            return None
        if current is not None and now < datetime.fromisoformat(current.until):
            outcome[0] = None
            return dataclasses.replace(
                current,
                suppressed=current.suppressed + 1,
                first_suppressed=current.first_suppressed or now.isoformat(),
            )
        carried = current.suppressed if current is not None else 0
        outcome[0] = carried
        return NotifyCooldown(event_id, (now + timedelta(seconds=seconds)).isoformat(), carried=carried)

    deps.state.update(keys.notify_cooldown(kind.value), change)
    if outcome[0] is None:
        deps.audit.record(
            actor,
            "notify.suppressed",
            event_id,
            key=f"{keys.notify_cooldown(kind.value)}:{event_id}",
            kind=kind.value,
            cooldown_seconds=seconds,
        )
    return outcome[0]


# --- files quarantined, per burst ----------------------------------------------------------------------------------


def summarise_quarantined(deps: Deps, actor: str = "reconcile") -> int:
    """Once a burst of quarantined files is over (none for the quiet period, or the oldest waited the longest
    wait), publish one `MLOps.FilesQuarantined` with the count and the first few files and reasons, and remove
    the notes it covers; the number covered. The event's id is the notes', so a crash before they are removed
    repeats the same event, which the notifications deduplicate."""
    settings = deps.settings.notify
    listed = deps.state.listed(keys.QUARANTINE_NOTES, SUMMARY_PAGE)
    if not listed:
        return 0
    now = deps.clock()
    newest = max(info.last_modified for _, info in listed)
    oldest = min(info.last_modified for _, info in listed)
    quiet = now - newest >= timedelta(seconds=settings.quarantine_quiet_seconds)
    waited = now - oldest >= timedelta(seconds=settings.quarantine_max_wait_seconds)
    if not (quiet or waited):
        return 0
    notes = [stored.record for key, _ in listed[:REASONS_READ] if (stored := deps.state.get(key))]
    reasons = Counter(reason for note in notes for reason in note.reasons)
    digest = hashlib.sha256("\n".join(sorted(key.path for key, _ in listed)).encode()).hexdigest()[:32]
    event_id = f"quarantined:{digest}"
    data = {
        "count": len(listed),
        "files": sorted(note.blob for note in notes)[:MAX_ITEMS],
        "reasons": [f"{reason} ({count})" for reason, count in reasons.most_common(MAX_ITEMS)],
        "since": oldest.isoformat(),
        "until": newest.isoformat(),
    }
    deps.publisher.publish([OutgoingEvent(FILES_QUARANTINED, "quarantine", data, id=event_id)])
    deps.audit.record(actor, "quarantine.summarised", event_id, key=f"{event_id}:published", **data)
    for key, _ in listed:
        deps.state.delete(key)
    return len(listed)
