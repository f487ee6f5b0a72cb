"""`--at` and `?at=`: the moment a person means, or a clear reason why the text names none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.domain.moments import BadMoment, parse_moment

NOW = datetime(2026, 11, 24, 15, 30, 12, tzinfo=UTC)
BERLIN_WINTER = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("2026-11-24T15:00Z", datetime(2026, 11, 24, 15, 0, tzinfo=UTC)),
        ("2026-11-24T15:00:00+01:00", datetime(2026, 11, 24, 14, 0, tzinfo=UTC)),
        ("2026-11-24T15:00", datetime(2026, 11, 24, 14, 0, tzinfo=UTC)),  # in the zone given
        ("2026-11-24 15:00:30.5", datetime(2026, 11, 24, 14, 0, 30, 500000, tzinfo=UTC)),
        ("2026-11-24", datetime(2026, 11, 23, 23, 0, tzinfo=UTC)),  # that day's midnight, there
        ("  2026-11-24T15:00Z ", datetime(2026, 11, 24, 15, 0, tzinfo=UTC)),
        ("now", NOW),
        ("NOW", NOW),
        ("today", datetime(2026, 11, 23, 23, 0, tzinfo=UTC)),
        ("yesterday", datetime(2026, 11, 22, 23, 0, tzinfo=UTC)),
        ("-2d", NOW - timedelta(days=2)),
        ("-3h", NOW - timedelta(hours=3)),
        ("-30m", NOW - timedelta(minutes=30)),
        ("-90s", NOW - timedelta(seconds=90)),
        ("-1w", NOW - timedelta(weeks=1)),
    ],
)
def test_a_time_is_read_as_meant(text: str, meant: datetime) -> None:
    found = parse_moment(text, NOW, BERLIN_WINTER)

    assert found == meant and found.tzinfo == UTC


def test_without_a_zone_a_time_without_offset_is_in_the_machines_zone() -> None:
    found = parse_moment("2026-11-24T15:00", NOW)

    assert found == datetime(2026, 11, 24, 15, 0).astimezone().astimezone(UTC)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "a time is needed"),
        ("   ", "a time is needed"),
        (None, "a time is needed"),
        (20261124, "a time is needed"),
        ("tomorrow-ish", "is not a time"),
        ("24/11/2026", "is not a time"),
        ("2026-13-01", "is not a time"),
        ("2026-11-24T25:00", "is not a time"),
        ("+2d", "is not a time"),
        ("-2y", "is not a time"),
        ("-999999999w", "out of range"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
        ("9999-12-31T23:59:59-01:00", "out of range"),
        ("9" * 65, "at most 64 characters"),
        ("2026-11-24\x00", "is not a time"),
    ],
)
def test_what_is_no_time_is_refused_with_the_reason_and_the_forms(text: object, reason: str) -> None:
    with pytest.raises(BadMoment) as refused:
        parse_moment(text, NOW, UTC)

    assert reason in str(refused.value)
    if reason != "out of range":
        assert "ISO 8601" in str(refused.value)
