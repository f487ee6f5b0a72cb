"""NCRONTAB, the six-field cron of Azure Functions timers: when each schedule fires next."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.host.ncrontab import parse


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def firings(expression: str, start: str, count: int) -> list[str]:
    schedule = parse(expression)
    current = moment(start)
    found = []
    for _ in range(count):
        current = schedule.next_after(current)
        found.append(current.strftime("%a %Y-%m-%d %H:%M:%S"))
    return found


def test_every_two_seconds() -> None:
    assert firings("*/2 * * * * *", "2024-05-06T12:00:00", 3) == [
        "Mon 2024-05-06 12:00:02",
        "Mon 2024-05-06 12:00:04",
        "Mon 2024-05-06 12:00:06",
    ]


def test_every_two_seconds_from_an_odd_second() -> None:
    assert firings("*/2 * * * * *", "2024-05-06T12:00:01.500", 1) == ["Mon 2024-05-06 12:00:02"]


def test_every_minute_on_the_minute_is_strictly_after_the_given_moment() -> None:
    assert firings("0 * * * * *", "2024-05-06T12:00:00", 2) == [
        "Mon 2024-05-06 12:01:00",
        "Mon 2024-05-06 12:02:00",
    ]


def test_every_minute_rolls_over_hour_day_and_year() -> None:
    assert firings("0 * * * * *", "2024-12-31T23:59:30", 1) == ["Wed 2025-01-01 00:00:00"]


def test_sundays_at_three() -> None:
    # 2024-05-06 is a Monday
    assert firings("0 0 3 * * 0", "2024-05-06T12:00:00", 2) == [
        "Sun 2024-05-12 03:00:00",
        "Sun 2024-05-19 03:00:00",
    ]


def test_sunday_may_also_be_written_7_or_sun() -> None:
    assert parse("0 0 3 * * 7").fields == parse("0 0 3 * * 0").fields == parse("0 0 3 * * SUN").fields


def test_weekdays_at_half_past_nine() -> None:
    # From Friday afternoon the next firing is Monday morning.
    assert firings("0 30 9 * * mon-fri", "2024-05-10T10:00:00", 2) == [
        "Mon 2024-05-13 09:30:00",
        "Tue 2024-05-14 09:30:00",
    ]


def test_fields_accept_lists_ranges_steps_and_month_names() -> None:
    schedule = parse("0,30 5-10/5 */6 1,15 jan-mar/2 *")

    seconds, minutes, hours, days, months, weekdays = schedule.fields
    assert seconds == {0, 30}
    assert minutes == {5, 10}
    assert hours == {0, 6, 12, 18}
    assert days == {1, 15}
    assert months == {1, 3}
    assert weekdays == set(range(7))


def test_a_single_value_with_a_step_runs_to_the_end_of_the_range() -> None:
    assert parse("5/20 * * * * *").fields[0] == {5, 25, 45}


def test_a_schedule_skips_months_that_do_not_match() -> None:
    assert firings("0 0 0 29 2 *", "2024-03-01T00:00:00", 1) == ["Tue 2028-02-29 00:00:00"]


def test_a_schedule_that_can_never_fire_says_so() -> None:
    with pytest.raises(ValueError, match="never fires"):
        parse("0 0 0 31 2 *").next_after(moment("2024-01-01T00:00:00"))


def test_next_after_keeps_the_time_zone_of_the_moment() -> None:
    assert parse("0 * * * * *").next_after(moment("2024-05-06T12:00:00")).tzinfo is UTC


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",  # five fields: the common cron, not NCRONTAB
        "* * * * * * *",
        "60 * * * * *",
        "* 60 * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * 32 * *",
        "* * * * 13 *",
        "* * * * * 8",
        "*/0 * * * * *",
        "a * * * * *",
        "* * * * * funday",
        "1-2-3 * * * * *",
        "",
    ],
)
def test_invalid_expressions_raise_value_error(expression: str) -> None:
    with pytest.raises(ValueError):
        parse(expression)


def test_a_reversed_range_is_rejected_when_parsed() -> None:
    with pytest.raises(ValueError):
        parse("30-10 * * * * *")
