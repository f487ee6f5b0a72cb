"""A moment as a person writes it (`--at`, `?at=`): ISO 8601, or a few simple relative forms (pure).

- `2026-11-24T15:00`, `2026-11-24 15:00:30.5`, with `Z` or an offset (`+01:00`); without one, in `zone`
- `2026-11-24`: that day's midnight in `zone`
- `now`, `today` (midnight), `yesterday` (midnight the day before)
- `-2d`, `-3h`, `-30m`, `-90s`, `-1w`: that long before now

`zone` None is the machine's local time zone (with its daylight saving rules for the date meant); the HTTP API
passes UTC, so a time without an offset means the same wherever the app runs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

MAX_LENGTH = 64
RELATIVE = re.compile(r"-(\d{1,9})([smhdw])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
FORMS = "an ISO 8601 date or date-time (2026-11-24, 2026-11-24T15:00, …Z or …+01:00), now, today, yesterday or -2d/-3h/-30m"


class BadMoment(ValueError):
    """The text names no moment; the message says what would."""


def parse_moment(text: object, now: datetime, zone: tzinfo | None = None) -> datetime:
    """The moment `text` names, as an aware datetime in UTC; `now` is aware."""
    if not isinstance(text, str) or not text.strip():
        raise BadMoment(f"a time is needed: {FORMS}")
    if len(text) > MAX_LENGTH:
        raise BadMoment(f"a time is at most {MAX_LENGTH} characters: {FORMS}")
    word = text.strip().lower()
    try:
        if word == "now":
            return now.astimezone(UTC)
        if word in ("today", "yesterday"):
            local = _in_zone(now, zone)
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
            midnight -= timedelta(days=1 if word == "yesterday" else 0)
            return _aware(midnight, zone)
        if relative := RELATIVE.fullmatch(word):
            amount, unit = relative.groups()
            return now.astimezone(UTC) - timedelta(**{UNITS[unit]: int(amount)})
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise BadMoment(f"{text!r} is not a time ({error}): {FORMS}") from None
    except OverflowError:
        raise BadMoment(f"{text!r} is out of range") from None
    try:
        return moment.astimezone(UTC) if moment.tzinfo else _aware(moment, zone)
    except (OverflowError, ValueError, OSError):  # past year 1 or 9999 once in UTC, or beyond the OS's clock
        raise BadMoment(f"{text!r} is out of range") from None


def _in_zone(now: datetime, zone: tzinfo | None) -> datetime:
    return now.astimezone(zone) if zone is not None else now.astimezone()


def _aware(naive: datetime, zone: tzinfo | None) -> datetime:
    """A wall-clock time in `zone` (the machine's when None) as UTC."""
    local = naive.replace(tzinfo=zone) if zone is not None else naive.astimezone()
    return local.astimezone(UTC)
