"""Timers fire in UTC, as Azure Functions evaluates NCRONTAB, unless WEBSITE_TIME_ZONE names another zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.host import ncrontab
from shared.host.timers import TimerScheduler, time_zone


def _scheduler(monkeypatch: pytest.MonkeyPatch, **settings: str) -> TimerScheduler:
    import function_app
    from shared.config import Settings
    from shared.host.functions_host import FunctionHost

    monkeypatch.delenv("WEBSITE_TIME_ZONE", raising=False)
    raw = {**Settings.from_env({}).raw, **settings}
    return TimerScheduler(FunctionHost(function_app.app, raw))


def test_schedules_are_evaluated_in_utc_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")  # wherever the local host runs
    scheduler = _scheduler(monkeypatch)
    assert scheduler.zone is UTC
    nightly = ncrontab.parse("0 0 2 * * *")
    due = nightly.next_after(datetime(2026, 12, 1, 12, 0, tzinfo=scheduler.zone))
    assert due == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


def test_website_time_zone_moves_them_to_that_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    scheduler = _scheduler(monkeypatch, WEBSITE_TIME_ZONE="Europe/Amsterdam")
    assert scheduler.zone == ZoneInfo("Europe/Amsterdam")
    due = ncrontab.parse("0 0 2 * * *").next_after(datetime(2026, 12, 1, 12, 0, tzinfo=scheduler.zone))
    assert due.astimezone(UTC) == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 02:00 in Amsterdam, in winter


def test_an_unknown_zone_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="WEBSITE_TIME_ZONE 'Mars/Olympus' is not a time zone name"):
        time_zone("Mars/Olympus")
