"""What served production when, derived from release decisions as the release handlers record them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.history import derive, parse_time

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    seq: Any
    time: Any
    actor: Any
    action: Any
    subject: Any
    detail: Any = field(default_factory=dict)


class Log:
    """Entries in the shape `shared.handlers.release_steps.transition` and `release.roll_back` write."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def add(self, hours: float, actor: str, action: str, subject: str, **detail: Any) -> None:
        moment = (T0 + timedelta(hours=hours)).isoformat()
        self.entries.append(Entry(len(self.entries) + 1, moment, actor, action, subject, detail))

    def promote(self, hours: float, version: str, model: str = "m", actor: str = "reconcile") -> None:
        self.add(
            hours,
            actor,
            "release.promoted",
            f"{model}-v{version}",
            model=f"{model}:{version}",
            deployment=f"{model}-v{version}",
            previous=None,
        )

    def roll_back(self, hours: float, version: str, model: str = "m", **detail: Any) -> None:
        self.add(
            hours,
            "rollback",
            "release.rolled_back",
            f"{model}-v{version}",
            model=f"{model}:{version}",
            deployment=f"{model}-v{version}",
            **detail,
        )


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_each_promotion_serves_until_the_next() -> None:
    log = Log()
    log.promote(1, "1")
    log.promote(5, "2")

    history = derive(log.entries, "m")

    first, second = history.periods
    assert (first.version, first.since, first.until, first.ended) == ("1", at(1), at(5), "replaced by 2")
    assert (second.version, second.deployment, second.release) == ("2", "m-v2", "m-v2")
    assert second.until is None and second.how == "promoted" and second.by == "reconcile"
    assert history.at(at(0.5)) is None
    assert history.at(at(1)).version == "1" and history.at(at(4.99)).version == "1"
    assert history.at(at(5)).version == "2" and history.at(at(500)).version == "2"


def test_rolling_back_the_serving_release_restores_the_one_before_it() -> None:
    log = Log()
    log.promote(1, "1")
    log.promote(2, "2")
    log.promote(3, "3")
    log.roll_back(4, "3", requested_by="alice@example.com", reason="customers complain")
    log.roll_back(6, "2", requested_by="bob")

    history = derive(log.entries, "m")

    assert [(p.version, p.how, p.by) for p in history.periods] == [
        ("1", "promoted", "reconcile"),
        ("2", "promoted", "reconcile"),
        ("3", "promoted", "reconcile"),
        ("2", "restored", "alice@example.com"),
        ("1", "restored", "bob"),
    ]
    restored = history.periods[3]
    assert (restored.since, restored.until, restored.reason) == (at(4), at(6), "customers complain")
    assert history.periods[2].ended == "rolled back by alice@example.com"
    assert history.at(at(5)).version == "2" and history.at(at(7)).version == "1"


def test_rolling_back_the_only_release_leaves_nothing_in_production() -> None:
    log = Log()
    log.promote(1, "1")
    log.roll_back(2, "1")

    history = derive(log.entries, "m")

    assert [p.version for p in history.periods] == ["1"]
    assert history.at(at(1.5)).version == "1" and history.at(at(3)) is None


def test_a_rollback_of_a_release_that_never_served_changes_nothing() -> None:
    log = Log()
    log.promote(1, "1")
    log.add(
        2, "reconcile", "release.rolling_back", "m-v2", model="m:2", deployment="m-v2", reason="canary slow"
    )
    log.roll_back(3, "2", restored="m-v1")

    history = derive(log.entries, "m")

    [only] = history.periods
    assert (only.version, only.until) == ("1", None)


def test_an_automatic_rollback_gives_the_failed_steps_reason_and_the_approver_is_named() -> None:
    log = Log()
    log.promote(1, "1")
    log.add(1.5, "approve", "release.approved", "m-v2", model="m:2", deployment="m-v2", approver="carol")
    log.promote(2, "2", actor="approve")
    log.add(
        3, "reconcile", "release.rolling_back", "m-v2", model="m:2", deployment="m-v2", reason="smoke failed"
    )
    log.add(3.1, "reconcile", "release.rolled_back", "m-v2", model="m:2", deployment="m-v2", restored="m-v1")

    periods = derive(log.entries, "m").periods

    assert (periods[1].by, periods[1].approved_by) == ("approve", "carol")
    assert (periods[2].version, periods[2].how, periods[2].by, periods[2].reason) == (
        "1",
        "restored",
        "reconcile",
        "smoke failed",
    )


def test_another_models_releases_are_its_own_history() -> None:
    log = Log()
    log.promote(1, "1")
    log.promote(2, "7", model="other")
    log.roll_back(3, "7", model="other")
    log.promote(4, "2")

    mine, theirs = derive(log.entries, "m"), derive(log.entries, "other")

    assert [(p.version, p.until) for p in mine.periods] == [("1", at(4)), ("2", None)]
    assert [(p.model, p.version, p.until) for p in theirs.periods] == [("other", "7", at(3))]
    assert derive(log.entries, "nobody").periods == ()


def test_entries_in_any_order_are_taken_in_chain_order() -> None:
    log = Log()
    log.promote(1, "1")
    log.promote(2, "2")
    log.roll_back(3, "2", requested_by="alice")
    log.promote(4, "3")
    shuffled = list(log.entries)
    random.Random(3).shuffle(shuffled)

    assert derive(shuffled, "m") == derive(log.entries, "m")
    assert [p.version for p in derive(reversed(log.entries), "m").periods] == ["1", "2", "1", "3"]


def test_a_promotion_recorded_twice_is_one_period() -> None:
    log = Log()
    log.promote(1, "1")
    log.promote(1.1, "1")

    [only] = derive(log.entries, "m").periods
    assert only.since == at(1)


@pytest.mark.parametrize(
    "change",
    [
        {"seq": "2"},
        {"seq": True},
        {"seq": None},
        {"time": "yesterday"},
        {"time": 1732438800},
        {"time": None},
        {"subject": None},
        {"subject": ["m-v2"]},
        {"subject": ""},
        {"detail": None},
        {"detail": ["m:2"]},
        {"detail": {"model": 2}},
        {"detail": {"model": "m"}},
        {"detail": {"model": "m:"}},
        {"detail": {"model": ":2"}},
        {"detail": {"model": {"name": "m"}}},
    ],
)
def test_a_malformed_entry_is_counted_and_ignored_not_guessed(change: dict[str, Any]) -> None:
    log = Log()
    log.promote(1, "1")
    log.promote(2, "2")
    good, bad = log.entries
    broken = Entry(**{**vars(bad), **change})

    history = derive([good, broken], "m")

    assert [(p.version, p.until) for p in history.periods] == [("1", None)]
    assert history.ignored == 1


def test_odd_values_in_the_detail_a_decision_does_not_need_are_left_out() -> None:
    log = Log()
    log.promote(1, "1")
    log.roll_back(2, "1")
    log.promote(3, "2")
    log.roll_back(4, "2")
    entries = [
        Entry(1, log.entries[0].time, 7, "release.promoted", "m-v1", {"model": "m:1", "deployment": ["x"]}),
        Entry(
            2, log.entries[2].time, None, "release.promoted", "m-v2", {"model": "m:2", "deployment": "m-v2"}
        ),
        Entry(
            3,
            log.entries[3].time,
            "rollback",
            "release.rolled_back",
            "m-v2",
            {"model": "m:2", "requested_by": {"name": "eve"}, "reason": 42},
        ),
    ]

    first, second, restored = derive(entries, "m").periods

    assert (first.deployment, first.by) == (None, "unknown")
    assert (restored.version, restored.by, restored.reason) == ("1", "rollback", None)
    assert second.to_json()["since"] == log.entries[2].time


def test_other_actions_are_not_read_at_all() -> None:
    entries = [Entry("x", None, None, "file.accepted", None, None), Entry(1, None, None, None, None, None)]

    history = derive(entries, "m")

    assert (history.periods, history.ignored) == ((), 0)


def test_entry_times_are_read_as_the_clock_writes_them_naive_as_utc() -> None:
    assert parse_time("2026-11-24T09:00:00+01:00") == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert parse_time("2026-11-24T09:00:00") == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert parse_time("0001-01-01T00:00:00+01:00") is None  # before year 1 in UTC
    assert parse_time("x" * 100) is None and parse_time(3) is None
