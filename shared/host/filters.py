"""Event Grid's advanced filters: read from the routing table, checked against Event Grid's limits, applied to an
event as Event Grid applies them, and written back in the ARM shape infra/subscriptions.bicep passes on.

The rules, from https://learn.microsoft.com/azure/event-grid/event-filtering (2022-09 revision) unless marked:
- Each filter tests one key: an envelope field (`ID`, `Topic`, `Subject`, `EventType`, `DataVersion`) or a
  dotted path into the data (`data.runTags.some_tag`). Keys are looked up without regard to case [inferred:
  Microsoft's own Azure ML doc filters on `data.RunTags.…` while the payload spells `runTags`].
- Several filters on a subscription are AND'd; several values in one filter are OR'd.
- A positive operator matches if any (key value, filter value) pair does; a negative one (`…Not…`) matches if
  none does. Key values of another type than the operator's are ignored, so a negative operator on a value of
  the wrong type matches [inferred from "ignored"]. Strings compare case-insensitively.
- A missing key: `NumberNotIn` and `StringNotIn` match, `IsNullOrUndefined` matches, every other operator does
  not (the doc lists all but the two range operators, which are taken as not matching [inferred]). A null value
  counts as missing, as `IsNullOrUndefined` groups the two [inferred].
- An array value is tested element by element only with `enableAdvancedFilteringOnArrays`; without it no
  operator but the null tests matches it [inferred from the Event Grid on IoT Edge doc: "the matching operation
  fails"]. Arrays of objects are not filtered: their objects count as values of another type.
- Limits: 25 filters and 25 filter values across all filters of a subscription, 512 characters per string
  value. A `[low, high]` range counts as one value and a single `value` as one [inferred].

Standard library only: shared/tools/infra.py renders the table with whatever Python the deployer has.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_FILTERS = 25
MAX_VALUES = 25
MAX_STRING_CHARS = 512

# Keys of the Event Grid schema the subscriptions deliver in (infra/subscriptions.bicep: EventGridSchema).
ENVELOPE_KEYS = ("ID", "Topic", "Subject", "EventType", "DataVersion")


class FilterError(ValueError):
    """An advanced filter Event Grid would refuse, or one that could never mean what it says."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


@dataclass(frozen=True)
class _Operator:
    accepts: (
        Callable[[Any], bool] | None
    )  # the key values it tests; None: the null tests, which test presence
    shape: str  # "values", "value", "ranges" or "" (what the ARM object carries)
    test: Callable[[Any, Any], bool]  # (key value, filter value) -> hit
    negative: bool = False
    missing_matches: bool = False


def _fold(text: str) -> str:
    return text.casefold()


def _in_range(key: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= key <= bounds[1]


def _never(key: Any, value: Any) -> bool:
    return False


_STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "In": lambda key, value: _fold(key) == _fold(value),
    "Contains": lambda key, value: _fold(value) in _fold(key),
    "BeginsWith": lambda key, value: _fold(key).startswith(_fold(value)),
    "EndsWith": lambda key, value: _fold(key).endswith(_fold(value)),
}

OPERATORS: dict[str, _Operator] = {
    "NumberIn": _Operator(_is_number, "values", lambda key, value: key == value),
    "NumberNotIn": _Operator(
        _is_number, "values", lambda key, value: key == value, negative=True, missing_matches=True
    ),
    "NumberLessThan": _Operator(_is_number, "value", lambda key, value: key < value),
    "NumberGreaterThan": _Operator(_is_number, "value", lambda key, value: key > value),
    "NumberLessThanOrEquals": _Operator(_is_number, "value", lambda key, value: key <= value),
    "NumberGreaterThanOrEquals": _Operator(_is_number, "value", lambda key, value: key >= value),
    "NumberInRange": _Operator(_is_number, "ranges", _in_range),
    "NumberNotInRange": _Operator(_is_number, "ranges", _in_range, negative=True),
    "BoolEquals": _Operator(_is_bool, "value", lambda key, value: key == value),
    **{f"String{name}": _Operator(_is_string, "values", test) for name, test in _STRING_TESTS.items()},
    **{
        f"StringNot{name}": _Operator(_is_string, "values", test, negative=True, missing_matches=name == "In")
        for name, test in _STRING_TESTS.items()
    },
    "IsNullOrUndefined": _Operator(None, "", _never, missing_matches=True),
    "IsNotNull": _Operator(None, "", _never),
}

_MISSING = object()


def lookup(event: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key, each part matched without regard to case (an exact spelling first); `_MISSING`
    when some part is absent or something on the way is not an object."""
    current: Any = event
    for part in key.split("."):
        if not isinstance(current, Mapping):
            return _MISSING
        if part in current:
            current = current[part]
            continue
        folded = part.casefold()
        spelled = next(
            (name for name in current if isinstance(name, str) and name.casefold() == folded), None
        )
        if spelled is None:
            return _MISSING
        current = current[spelled]
    return current


@dataclass(frozen=True)
class AdvancedFilter:
    """One advanced filter: `values` holds the filter's values (one for the single-value operators, `[low,
    high]` pairs for the range operators, none for the null tests)."""

    operator: str
    key: str
    values: tuple[Any, ...] = ()

    def matches(self, event: Mapping[str, Any], arrays: bool = False) -> bool:
        spec = OPERATORS[self.operator]
        found = lookup(event, self.key)
        absent = found is _MISSING or found is None
        if spec.accepts is None:
            return absent if self.operator == "IsNullOrUndefined" else not absent
        if absent:
            return spec.missing_matches
        if isinstance(found, list) and not arrays:
            return False
        candidates = found if isinstance(found, list) else [found]
        tested = [candidate for candidate in candidates if spec.accepts(candidate)]
        hit = any(spec.test(candidate, value) for value in self.values for candidate in tested)
        return not hit if spec.negative else hit

    def count(self) -> int:
        """How many of the subscription's 25 filter values this filter uses."""
        return len(self.values)

    def arm(self) -> dict[str, Any]:
        """The filter as ARM's AdvancedFilter (Microsoft.EventGrid 2022-06-15): operatorType, key, then
        `values` (a list), `value` (one) or nothing."""
        shape = OPERATORS[self.operator].shape
        body: dict[str, Any] = {"operatorType": self.operator, "key": self.key}
        if shape == "value":
            body["value"] = self.values[0]
        elif shape == "ranges":
            body["values"] = [list(bounds) for bounds in self.values]
        elif shape == "values":
            body["values"] = list(self.values)
        return body


def all_match(filters: Iterable[AdvancedFilter], event: Mapping[str, Any], arrays: bool = False) -> bool:
    """Whether an event passes a subscription's advanced filters (all of them: they are AND'd)."""
    return all(f.matches(event, arrays) for f in filters)


# --- reading the routing table ---------------------------------------------------------------------------------


def parse_filters(raw: Any, substitute: Callable[[str], str] = str) -> tuple[AdvancedFilter, ...]:
    """A subscription's `advanced_filters` (ARM-shaped objects) checked against Event Grid's rules and limits;
    `substitute` fills placeholders into string values before they are checked. Raises FilterError."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FilterError(f"advanced_filters must be a list of filters, not {_kind(raw)}")
    if len(raw) > MAX_FILTERS:
        raise FilterError(f"{len(raw)} advanced filters; Event Grid allows {MAX_FILTERS} per subscription")
    filters = tuple(_filter(entry, index, substitute) for index, entry in enumerate(raw, start=1))
    values = sum(f.count() for f in filters)
    if values > MAX_VALUES:
        raise FilterError(
            f"{values} filter values across the advanced filters; Event Grid allows {MAX_VALUES} per subscription"
        )
    return filters


def _filter(entry: Any, index: int, substitute: Callable[[str], str]) -> AdvancedFilter:
    where = f"advanced filter {index}"
    if not isinstance(entry, Mapping):
        raise FilterError(f"{where} must be an object, not {_kind(entry)}")
    operator = entry.get("operatorType")
    if operator not in OPERATORS:
        raise FilterError(f"{where}: operatorType {operator!r} is not one of {', '.join(OPERATORS)}")
    where = f"{where} ({operator})"
    spec = OPERATORS[operator]
    allowed = {"operatorType", "key", *({"values"} if spec.shape in ("values", "ranges") else ())}
    allowed |= {"value"} if spec.shape == "value" else set()
    unknown = sorted(set(entry) - allowed)
    if unknown:
        takes = {"value": "`value`", "values": "`values`", "ranges": "`values` ([low, high] pairs)"}
        expected = takes.get(spec.shape, "no value")
        raise FilterError(f"{where}: unexpected {', '.join(unknown)}; {operator} takes a key and {expected}")
    key = _key(entry.get("key"), where)
    if spec.shape == "value":
        if "value" not in entry:
            raise FilterError(f"{where}: it needs a `value`")
        return AdvancedFilter(operator, key, (_value(entry["value"], spec, where, substitute),))
    if spec.shape == "":
        return AdvancedFilter(operator, key)
    values = entry.get("values")
    if not isinstance(values, list) or not values:
        raise FilterError(f"{where}: `values` must be a non-empty list, not {_kind(values)}")
    if spec.shape == "ranges":
        return AdvancedFilter(operator, key, tuple(_range(v, where) for v in values))
    return AdvancedFilter(operator, key, tuple(_value(v, spec, where, substitute) for v in values))


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key:
        raise FilterError(f"{where}: `key` must be a non-empty string, not {_kind(key)}")
    if key.casefold() in (name.casefold() for name in ENVELOPE_KEYS):
        return key
    head, dot, path = key.partition(".")
    if head.casefold() != "data" or not dot or any(not part.strip() for part in path.split(".")):
        raise FilterError(
            f"{where}: key {key!r} is neither an envelope field ({', '.join(ENVELOPE_KEYS)}) nor a dotted "
            "path into the data such as data.runStatus"
        )
    return key


def _value(value: Any, spec: _Operator, where: str, substitute: Callable[[str], str]) -> Any:
    if spec.accepts is _is_string:
        if not isinstance(value, str):
            raise FilterError(f"{where}: values must be strings, not {_kind(value)}")
        value = substitute(value)
        if len(value) > MAX_STRING_CHARS:
            raise FilterError(
                f"{where}: a value of {len(value)} characters; Event Grid allows {MAX_STRING_CHARS} "
                f"({value[:40]!r}...)"
            )
        return value
    if spec.accepts is _is_bool:
        if not isinstance(value, bool):
            raise FilterError(f"{where}: the value must be true or false, not {_kind(value)}")
        return value
    if not _is_number(value) or not math.isfinite(value):
        raise FilterError(f"{where}: values must be finite numbers, not {_kind(value)}")
    return value


def _range(value: Any, where: str) -> tuple[float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(_is_number(bound) and math.isfinite(bound) for bound in value)
    ):
        raise FilterError(f"{where}: each value must be a [low, high] pair of numbers, not {value!r}")
    low, high = value
    if low > high:
        raise FilterError(f"{where}: range [{low}, {high}] is empty (low above high)")
    return (low, high)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, Mapping) else f"a {type(value).__name__}"
