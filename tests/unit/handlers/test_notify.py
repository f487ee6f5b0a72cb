"""Notifications on the fakes: each webhook told once per event, a cooldown per kind, failures retried by the
tick with doubling waits and then given up, and never a failure of the event's handling."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from functions import notify as notify_function
from shared.domain.messages import Envelope
from shared.handlers import reconcile
from shared.handlers.notify import on_notify, retry_deliveries, summarise_quarantined
from shared.ports import WebhookError
from shared.state import keys
from shared.state.records import DeliveryStatus
from tests.builders import actions, good_csv, land
from tests.fakes import CUSTOM_TOPIC, FakeDeps, make_deps

HOOK = "https://ops.example.com/hook"
SLACK = "https://hooks.slack.com/services/T/B/X"


def _deps(**settings: str) -> FakeDeps:
    return make_deps(
        MLOPS_NOTIFY_URLS=settings.pop("urls", f"{HOOK},{SLACK}"),
        MLOPS_NOTIFY_SECRET="s3cret",
        MLOPS_NOTIFY_PAUSE_SECONDS="0",
        MLOPS_NOTIFY_RETRY_SECONDS="60",
        MLOPS_NOTIFY_MAX_RETRIES="3",
        **settings,
    )


def event(
    deps: FakeDeps, event_id: str = "r1:approval", event_type: str = "MLOps.ApprovalRequested", **data: Any
) -> Envelope:
    return Envelope(
        id=event_id,
        event_type=event_type,
        topic=deps.settings.topics.custom,
        subject="releases/r1",
        time=deps.clock(),
        data={"releaseId": "r1", "modelName": "mlops-model", "modelVersion": "1", **data},
    )


def deliveries(deps: FakeDeps) -> list[Any]:
    return [stored.record for stored in deps.state.list(keys.DELIVERIES)]


def test_every_webhook_is_told_once_even_when_the_event_comes_again() -> None:
    deps = _deps()
    on_notify(event(deps), deps)
    on_notify(event(deps), deps)

    assert len(deps.webhooks.to(HOOK)) == 1 and len(deps.webhooks.to(SLACK)) == 1
    generic = json.loads(deps.webhooks.to(HOOK)[0].body)
    assert generic["id"] == "r1:approval" and generic["kind"] == "approval_requested"
    assert "text" in json.loads(deps.webhooks.to(SLACK)[0].body)
    delivered = actions(deps, "notify.delivered")
    assert sorted(entry.detail["webhook"] for entry in delivered) == ["hooks.slack.com", "ops.example.com"]
    assert all(HOOK not in json.dumps(entry.detail) for entry in deps.audit.entries())  # URLs stay secret
    assert deps.audit.verify() == []


def test_a_webhook_that_fails_once_is_called_again_at_once() -> None:
    deps = _deps(urls=HOOK)
    deps.webhooks.answer(HOOK, 503)
    on_notify(event(deps), deps)

    assert len(deps.webhooks.to(HOOK)) == 2
    [delivery] = deliveries(deps)
    assert delivery.status is DeliveryStatus.DELIVERED and delivery.calls == 2


def test_a_failing_webhook_is_left_pending_and_retried_by_the_tick_with_doubling_waits() -> None:
    deps = _deps(urls=HOOK)
    deps.webhooks.answer(HOOK, *[WebhookError("ConnectionError: refused")] * 4)
    on_notify(event(deps), deps)  # returns normally

    [delivery] = deliveries(deps)
    assert delivery.status is DeliveryStatus.PENDING and delivery.calls == 3
    assert datetime.fromisoformat(delivery.next_at) == deps.clock() + timedelta(seconds=60)
    assert retry_deliveries(deps) == 0  # not yet due
    assert len(deps.webhooks.to(HOOK)) == 3

    deps.clock.advance(60)
    assert retry_deliveries(deps) == 1  # fails a 4th time: next wait is twice as long
    [delivery] = deliveries(deps)
    assert delivery.retries == 1 and delivery.status is DeliveryStatus.PENDING
    assert datetime.fromisoformat(delivery.next_at) == deps.clock() + timedelta(seconds=120)

    deps.clock.advance(120)
    reconcile.reconcile(deps)  # the tick's own step; the webhook answers now
    [delivery] = deliveries(deps)
    assert delivery.status is DeliveryStatus.DELIVERED and len(deps.webhooks.to(HOOK)) == 5
    assert [e.detail["next_at"] for e in actions(deps, "notify.retrying")] == [
        (deps.clock() - timedelta(seconds=120)).isoformat(),
        deps.clock().isoformat(),
    ]


def test_a_webhook_that_keeps_failing_is_given_up_in_the_audit_log() -> None:
    deps = _deps(urls=HOOK)
    deps.webhooks.answer(HOOK, *[500] * 50)
    on_notify(event(deps), deps)
    for _ in range(10):
        deps.clock.advance(3600)
        retry_deliveries(deps)

    [delivery] = deliveries(deps)
    assert delivery.status is DeliveryStatus.GIVEN_UP
    assert len(deps.webhooks.to(HOOK)) == 3 + 3  # the quick calls, then MLOPS_NOTIFY_MAX_RETRIES
    [given_up] = actions(deps, "notify.given_up")
    assert given_up.subject == "r1:approval" and "HTTP 500" in given_up.detail["reason"]
    assert list(deps.state.open(keys.DELIVERIES)) == []  # nothing left for the ticks


def test_a_refusal_is_final_at_once() -> None:
    deps = _deps(urls=HOOK)
    deps.webhooks.answer(HOOK, 404)
    on_notify(event(deps), deps)

    assert len(deps.webhooks.to(HOOK)) == 1
    [given_up] = actions(deps, "notify.given_up")
    assert "refused it (HTTP 404)" in given_up.detail["reason"]


def test_a_slow_webhook_costs_at_most_its_timeout_per_call() -> None:
    deps = _deps(urls=f"{HOOK},{SLACK}", MLOPS_NOTIFY_TIMEOUT_SECONDS="2")
    deps.webhooks.slow[HOOK] = 60
    on_notify(event(deps), deps)

    assert all(post.timeout <= 2 for post in deps.webhooks.posted)
    assert len(deps.webhooks.to(SLACK)) == 1  # the slow one did not stop the next
    by_host = {d.host: d for d in deliveries(deps)}
    assert by_host["ops.example.com"].status is DeliveryStatus.PENDING
    assert "ReadTimeout" in by_host["ops.example.com"].last_error


def test_a_removed_webhook_is_given_up_by_the_tick() -> None:
    deps = _deps(urls=HOOK)
    deps.webhooks.answer(HOOK, 500, 500, 500)
    on_notify(event(deps), deps)
    later = make_deps(MLOPS_NOTIFY_URLS=SLACK)
    later.blobs, later.state, later.audit, later.clock = deps.blobs, deps.state, deps.audit, deps.clock
    deps.clock.advance(60)
    retry_deliveries(later)

    assert "no longer in MLOPS_NOTIFY_URLS" in actions(deps, "notify.given_up")[0].detail["reason"]
    assert later.webhooks.posted == []


def test_a_noisy_kind_is_held_back_during_its_cooldown_and_counted_in_the_next() -> None:
    deps = _deps(urls=HOOK, MLOPS_NOTIFY_COOLDOWNS="drift_detected=600")
    on_notify(event(deps, "d1", "MLOps.DriftDetected"), deps)
    deps.clock.advance(60)
    on_notify(event(deps, "d2", "MLOps.DriftDetected"), deps)
    on_notify(event(deps, "d3", "MLOps.DriftDetected"), deps)
    on_notify(event(deps, "d1", "MLOps.DriftDetected"), deps)  # the one sent, delivered again: nothing new

    assert len(deps.webhooks.to(HOOK)) == 1
    assert [entry.subject for entry in actions(deps, "notify.suppressed")] == ["d2", "d3"]

    deps.clock.advance(600)
    on_notify(event(deps, "d4", "MLOps.DriftDetected"), deps)
    last = json.loads(deps.webhooks.to(HOOK)[-1].body)
    assert last["id"] == "d4" and last["suppressed"] == 2
    assert "2 more like this held back" in last["summary"]


def test_release_decisions_are_not_held_back_by_default() -> None:
    deps = _deps(urls=HOOK)
    for number in range(3):
        on_notify(event(deps, f"r{number}:approval"), deps)
        on_notify(event(deps, f"r{number}:rolled_back", "MLOps.ReleaseRolledBack"), deps)
    assert len(deps.webhooks.to(HOOK)) == 6
    assert actions(deps, "notify.suppressed") == []


def test_without_webhooks_nothing_is_written_or_sent() -> None:
    deps = make_deps()
    on_notify(event(deps), deps)
    assert deps.webhooks.posted == [] and deliveries(deps) == []


# --- the function, as the runtime calls it -----------------------------------------------------------------------


@pytest.fixture()
def function_deps(monkeypatch: pytest.MonkeyPatch) -> FakeDeps:
    made = _deps(urls=HOOK)
    monkeypatch.setattr(notify_function, "deps", lambda: made)
    return made


def grid_event(data: Any, event_type: str = "MLOps.ApprovalRequested", **fields: Any) -> func.EventGridEvent:
    values = {
        "id": "evt-1",
        "subject": "releases/r1",
        "event_type": event_type,
        "topic": CUSTOM_TOPIC,
        "event_time": None,
        "data_version": "1",
        "data": data,
        **fields,
    }
    return func.EventGridEvent(**values)


@pytest.mark.parametrize(
    "data",
    [None, {}, {"releaseId": {"a": [None]}, "modelName": 1e308, "approve": ["x"], "x": "\ud800"}],
)
def test_the_function_notifies_whatever_values_the_data_holds(function_deps: FakeDeps, data: Any) -> None:
    notify_function.on_notify(grid_event(data))
    [posted] = function_deps.webhooks.posted
    assert json.loads(posted.body)["kind"] == "approval_requested"


@pytest.mark.parametrize("data", [0, "text", [1, 2], True])
def test_data_that_is_not_an_object_is_a_recorded_rejection(function_deps: FakeDeps, data: Any) -> None:
    notify_function.on_notify(grid_event(data))
    assert function_deps.webhooks.posted == []
    [rejected] = actions(function_deps, "event.rejected")
    assert "malformed" in rejected.detail["reason"]


def test_the_function_rejects_foreign_topics_and_malformed_drift(function_deps: FakeDeps) -> None:
    notify_function.on_notify(grid_event({}, topic="/subscriptions/other/topics/x"))
    notify_function.on_notify(grid_event({"driftShare": "lots"}, "MLOps.DriftDetected", id="evt-2"))
    assert function_deps.webhooks.posted == []
    assert len(actions(function_deps, "event.rejected")) == 2


# --- files quarantined, once per burst ---------------------------------------------------------------------------


def test_a_burst_of_quarantined_files_is_announced_once_when_it_is_over() -> None:
    deps = _deps(MLOPS_NOTIFY_QUARANTINE_QUIET_SECONDS="60")
    for number in range(7):
        land(deps, f"bad-{number}.csv", b"x1,x2\n1,2\n")
    land(deps, "good.csv", good_csv())
    assert summarise_quarantined(deps) == 0  # not quiet yet

    deps.clock.advance(61)
    assert summarise_quarantined(deps) == 7
    [announced] = [e for e in deps.publisher.events if e.event_type == "MLOps.FilesQuarantined"]
    assert announced.data["count"] == 7 and len(announced.data["files"]) == 5
    assert announced.data["reasons"] and announced.data["reasons"][0].endswith("(7)")
    assert summarise_quarantined(deps) == 0  # the notes it covered are gone
    assert len(actions(deps, "quarantine.summarised")) == 1


def test_a_steady_trickle_is_announced_after_the_longest_wait() -> None:
    deps = _deps(MLOPS_NOTIFY_QUARANTINE_QUIET_SECONDS="60", MLOPS_NOTIFY_QUARANTINE_MAX_WAIT_SECONDS="300")
    for number in range(10):
        land(deps, f"bad-{number}.csv", b"x1,x2\n1,2\n")
        deps.clock.advance(40)
        if summarise_quarantined(deps):
            break
    assert number == 7  # the first landed 320 s before: over the longest wait, though never quiet
