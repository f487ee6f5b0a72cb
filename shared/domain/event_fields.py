"""Reading the fields of an event's JSON: whatever value a sender put in a field, a reader returns it typed or
raises `ValueError` naming the field and what it held, which the parser turns into a recorded rejection.

Keys match regardless of case (`ModelName` == `modelName`), as real deliveries spell them either way.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# What the parser turns into a rejection: a reader's ValueError, and what the standard library raises on
# values no reader anticipated (a number too large for an integer, JSON nested past the recursion limit).
MALFORMED = (ValueError, TypeError, KeyError, OverflowError, RecursionError)


class CaseInsensitive(Mapping[str, Any]):
    """A read-only view of a JSON object whose keys match regardless of case (`ModelName` == `modelName`)."""

    def __init__(self, data: Mapping[str, Any] | None) -> None:
        self._data = dict(data or {})
        self._keys = {key.lower(): key for key in self._data}

    def __getitem__(self, key: str) -> Any:
        return self._data[self._keys[key.lower()]]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def text(self, key: str, default: str = "") -> str:
        """The field's text; `default` if it is absent or null; ValueError if it holds anything but text."""
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ValueError(f"{key} is {kind(value)}, not text")
        if not is_unicode(value):
            raise ValueError(f"{key} is not Unicode text (it holds a lone surrogate)")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        """The field's object; {} if it is absent or null; ValueError if it holds anything but an object."""
        value = self.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"{key} is {kind(value)}, not an object")
        return dict(value)

    def count(self, key: str) -> int:
        """A whole number of things (a size): 0 if absent or null; ValueError for anything else."""
        value = self.get(key)
        if value is None:
            return 0
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key} is {kind(value)}, not a count")
        return value

    def fraction(self, key: str) -> float | None:
        """A share between 0 and 1, or None if absent or null; ValueError for anything else."""
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{key} is {kind(value)}, not a share between 0 and 1")
        return float(value)

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of texts: () if absent or null; ValueError for anything else."""
        value = self.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"{key} is {kind(value)}, not a list of texts")
        return tuple(value)

    def version(self, key: str) -> str:
        """A version, sent as text or as a whole number: "" if absent or null; ValueError otherwise."""
        value = self.get(key)
        return "" if value is None else version_text(value)


def is_unicode(text: str) -> bool:
    """Whether `text` is Unicode: JSON's escapes can spell a lone surrogate, which no name or URL may hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def version_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"the version is {kind(value)}, not text or a whole number")
    if isinstance(value, str) and not is_unicode(value):
        raise ValueError("the version is not Unicode text (it holds a lone surrogate)")
    return str(value).strip()


def strict_text(data: CaseInsensitive, key: str) -> str:
    return data.text(key).strip()


def kind(value: Any) -> str:
    """A JSON value's kind, as a rejection names it."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        out_of_range = (isinstance(value, float) and not math.isfinite(value)) or abs(value) >= 1e15
        return "a number out of range" if out_of_range else f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, Mapping) else f"a {type(value).__name__}"


def json_data(data: Any) -> dict[str, Any]:
    """An event's data: an object, or JSON text or bytes of one; {} for none."""
    if data is None:
        return {}
    if isinstance(data, bytes | str):
        if not data:
            return {}
        try:
            data = json.loads(data)
        except RecursionError:
            raise ValueError("event data is nested too deeply") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"event data is {kind(data)}, not an object")
    return dict(data)


def base64_data(text: str) -> bytes:
    """A CloudEvent's `data_base64`."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("data_base64 is not base64") from None


def event_time(text: str) -> datetime:
    """An event's time, ISO 8601 (Event Grid sends 7 fractional digits); now if there is none."""
    if not text:
        return datetime.now(UTC)
    cleaned = text.strip().replace("Z", "+00:00")
    head, sep, tail = cleaned.partition(".")
    if sep:  # Event Grid sends 7 fractional digits; Python reads at most 6
        digits = tail[: len(tail) - len(tail.lstrip("0123456789"))]
        zone = tail[len(digits) :]
        cleaned = f"{head}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"event time {text[:64]!r} is not ISO 8601") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
