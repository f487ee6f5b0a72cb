"""Event Grid's advanced filters as the local host applies them: each operator, missing keys, type mismatches,
case, arrays, AND and OR, and the limits the routing table is held to.

The expectations follow https://learn.microsoft.com/azure/event-grid/event-filtering (its pseudo code per
operator and its note on missing keys); the cases marked [inferred] are the module docstring's readings.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.host.filters import (
    MAX_FILTERS,
    MAX_STRING_CHARS,
    MAX_VALUES,
    OPERATORS,
    AdvancedFilter,
    FilterError,
    all_match,
    lookup,
    parse_filters,
)


def event(**data: Any) -> dict[str, Any]:
    return {
        "id": "evt-1",
        "topic": "/subscriptions/s/providers/Microsoft.MachineLearningServices/workspaces/w",
        "subject": "experiments/e/runs/r-1",
        "eventType": "Microsoft.MachineLearningServices.RunStatusChanged",
        "eventTime": "2026-01-01T00:00:00Z",
        "dataVersion": "2",
        "data": data,
    }


def passes(operator: str, value: Any, values: tuple[Any, ...] = (), *, arrays: bool = False) -> bool:
    """Whether `{"data": {"key": value}}` passes the filter; `value=MISSING` leaves the key out."""
    data = {} if value is MISSING else {"key": value}
    return AdvancedFilter(operator, "data.key", values).matches(event(**data), arrays)


MISSING = object()


# --- each operator on a value of its type ----------------------------------------------------------------------

OPERATOR_CASES = [
    # (operator, key value, filter values, expected)
    ("NumberIn", 5, (5, 1), True),
    ("NumberIn", 2, (5, 1), False),
    ("NumberIn", 5.0, (5,), True),  # numbers are numbers: 5 == 5.0
    ("NumberNotIn", 2, (41, 0), True),
    ("NumberNotIn", 41, (41, 0), False),
    ("NumberLessThan", 99, (100,), True),
    ("NumberLessThan", 100, (100,), False),
    ("NumberGreaterThan", 21, (20,), True),
    ("NumberGreaterThan", 20, (20,), False),
    ("NumberLessThanOrEquals", 100, (100,), True),
    ("NumberLessThanOrEquals", 100.5, (100,), False),
    ("NumberGreaterThanOrEquals", 30, (30,), True),
    ("NumberGreaterThanOrEquals", 29.9, (30,), False),
    ("NumberInRange", 3.14159, ((3.14159, 999.95), (3000, 4000)), True),  # bounds are inclusive
    ("NumberInRange", 4000, ((3.14159, 999.95), (3000, 4000)), True),
    ("NumberInRange", 1500, ((3.14159, 999.95), (3000, 4000)), False),
    ("NumberNotInRange", 1500, ((3.14159, 999.95), (3000, 4000)), True),
    ("NumberNotInRange", 3500, ((3.14159, 999.95), (3000, 4000)), False),
    ("BoolEquals", True, (True,), True),
    ("BoolEquals", False, (True,), False),
    ("StringIn", "fabrikam", ("contoso", "fabrikam", "factory"), True),
    ("StringIn", "fabrikam inc", ("contoso", "fabrikam"), False),  # exact, not a substring
    ("StringNotIn", "azure", ("aws", "bridge"), True),
    ("StringNotIn", "aws", ("aws", "bridge"), False),
    ("StringContains", "azure data factory", ("microsoft", "azure"), True),
    ("StringContains", "event hubs", ("microsoft", "azure"), False),
    ("StringNotContains", "event hubs", ("contoso", "fabrikam"), True),
    ("StringNotContains", "made by fabrikam", ("contoso", "fabrikam"), False),
    ("StringBeginsWith", "event hubs", ("event", "message"), True),
    ("StringBeginsWith", "hubs of events", ("event", "message"), False),
    ("StringNotBeginsWith", "hubs of events", ("event", "message"), True),
    ("StringNotBeginsWith", "message queue", ("event", "message"), False),
    ("StringEndsWith", "eventgrid.png", ("jpg", "jpeg", "png"), True),
    ("StringEndsWith", "eventgrid.png.txt", ("jpg", "png"), False),
    ("StringNotEndsWith", "eventgrid.txt", ("jpg", "png"), True),
    ("StringNotEndsWith", "eventgrid.jpg", ("jpg", "png"), False),
    ("IsNullOrUndefined", None, (), True),
    ("IsNullOrUndefined", "", (), False),  # an empty string is a value
    ("IsNullOrUndefined", 0, (), False),
    ("IsNotNull", "x", (), True),
    ("IsNotNull", False, (), True),
    ("IsNotNull", None, (), False),
]


@pytest.mark.parametrize(("operator", "value", "values", "expected"), OPERATOR_CASES)
def test_each_operator_on_a_value_of_its_type(
    operator: str, value: Any, values: tuple, expected: bool
) -> None:
    assert passes(operator, value, values) is expected


def test_every_operator_event_grid_has_is_tested_both_ways() -> None:
    documented = {
        "NumberIn", "NumberNotIn", "NumberLessThan", "NumberGreaterThan", "NumberLessThanOrEquals",
        "NumberGreaterThanOrEquals", "NumberInRange", "NumberNotInRange", "BoolEquals", "StringIn",
        "StringNotIn", "StringContains", "StringNotContains", "StringBeginsWith", "StringNotBeginsWith",
        "StringEndsWith", "StringNotEndsWith", "IsNullOrUndefined", "IsNotNull",
    }  # fmt: skip
    assert set(OPERATORS) == documented
    for operator in documented:
        outcomes = {expected for op, _, _, expected in OPERATOR_CASES if op == operator}
        assert outcomes == {True, False}, operator


# --- a missing key ---------------------------------------------------------------------------------------------

# The doc's note: not matched for all of these, matched for NumberNotIn and StringNotIn.
NOT_MATCHED_WHEN_MISSING = [
    ("NumberGreaterThan", (1,)),
    ("NumberGreaterThanOrEquals", (1,)),
    ("NumberLessThan", (1,)),
    ("NumberLessThanOrEquals", (1,)),
    ("NumberIn", (1,)),
    ("BoolEquals", (True,)),
    ("StringContains", ("a",)),
    ("StringNotContains", ("a",)),
    ("StringBeginsWith", ("a",)),
    ("StringNotBeginsWith", ("a",)),
    ("StringEndsWith", ("a",)),
    ("StringNotEndsWith", ("a",)),
    ("StringIn", ("a",)),
    ("NumberInRange", ((0, 1),)),  # [inferred]: the note does not list the range operators
    ("NumberNotInRange", ((0, 1),)),  # [inferred]
    ("IsNotNull", ()),
]


@pytest.mark.parametrize(("operator", "values"), NOT_MATCHED_WHEN_MISSING)
def test_a_missing_key_is_not_matched(operator: str, values: tuple) -> None:
    assert passes(operator, MISSING, values) is False
    assert passes(operator, None, values) is False  # [inferred] null counts as undefined


@pytest.mark.parametrize(
    ("operator", "values"), [("NumberNotIn", (1,)), ("StringNotIn", ("a",)), ("IsNullOrUndefined", ())]
)
def test_a_missing_key_is_matched_by_not_in_and_is_null(operator: str, values: tuple) -> None:
    assert passes(operator, MISSING, values) is True
    assert passes(operator, None, values) is True


def test_a_key_missing_on_the_way_down_is_missing() -> None:
    found = {"data": {"runTags": "not an object"}}
    assert AdvancedFilter("StringNotIn", "data.runTags.tag", ("x",)).matches(found) is True
    assert AdvancedFilter("StringIn", "data.runTags.tag", ("x",)).matches(found) is False
    assert AdvancedFilter("IsNullOrUndefined", "data.runTags.tag").matches({"data": None}) is True


# --- types ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "values"),
    [
        ("NumberIn", "5", (5,)),  # a numeric string is a string
        ("NumberGreaterThan", True, (0,)),  # a boolean is not a number
        ("NumberInRange", "2", ((1, 3),)),
        ("BoolEquals", "true", (True,)),
        ("BoolEquals", 1, (True,)),
        ("StringIn", 5, ("5",)),
        ("StringContains", {"nested": "abc"}, ("abc",)),
        ("StringBeginsWith", True, ("t",)),
    ],
)
def test_a_value_of_another_type_is_ignored_so_positive_operators_miss(
    operator: str, value: Any, values: tuple
) -> None:
    assert passes(operator, value, values) is False


@pytest.mark.parametrize(
    ("operator", "value", "values"),
    [
        ("NumberNotIn", "5", (5,)),
        ("NumberNotInRange", "2", ((1, 3),)),
        ("StringNotIn", 5, ("5",)),
        ("StringNotContains", 123, ("2",)),
        ("StringNotBeginsWith", False, ("f",)),
        ("StringNotEndsWith", 1.5, ("5",)),
    ],
)
def test_a_value_of_another_type_is_ignored_so_negative_operators_pass(
    operator: str, value: Any, values: tuple
) -> None:
    assert passes(operator, value, values) is True  # [inferred]: nothing was compared, so nothing failed


# --- case -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "values", "expected"),
    [
        ("StringIn", "COMPLETED", ("Completed",), True),
        ("StringIn", "failed", ("Completed", "Failed"), True),
        ("StringNotIn", "CANCELED", ("canceled",), False),
        ("StringContains", "The signal 'X' HAS FAILED due to", ("has failed due to",), True),
        ("StringNotContains", "ABC", ("b",), False),
        ("StringBeginsWith", "Experiments/E", ("experiments/",), True),
        ("StringNotBeginsWith", "Experiments/E", ("EXPERIMENTS",), False),
        ("StringEndsWith", "model.PNG", (".png",), True),
        ("StringNotEndsWith", "model.PNG", (".png",), False),
        ("StringIn", "straße", ("STRASSE",), True),  # full case folding, not only ASCII
    ],
)
def test_strings_compare_without_regard_to_case(
    operator: str, value: Any, values: tuple, expected: bool
) -> None:
    assert passes(operator, value, values) is expected


@pytest.mark.parametrize(
    "key",
    [
        "data.RunTags.azureml_modelmonitor_threshold_breached",  # Microsoft's documented spelling
        "data.runTags.azureml_modelmonitor_threshold_breached",  # the payload's
        "DATA.RUNTAGS.AZUREML_MODELMONITOR_THRESHOLD_BREACHED",
        "Data.runtags.Azureml_ModelMonitor_Threshold_Breached",
    ],
)
def test_keys_match_without_regard_to_case(key: str) -> None:
    tagged = event(
        runTags={"azureml_modelmonitor_threshold_breached": "The signal 's' has failed due to ..."}
    )
    assert AdvancedFilter("StringContains", key, ("has failed due to",)).matches(tagged) is True


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("Subject", "experiments/e/runs/r-1"),
        ("EVENTTYPE", "Microsoft.MachineLearningServices.RunStatusChanged"),
        ("ID", "evt-1"),
        ("DataVersion", "2"),
    ],
)
def test_envelope_keys_are_found_whatever_their_case(key: str, expected: str) -> None:
    assert lookup(event(), key) == expected


def test_an_exact_spelling_wins_over_another_case() -> None:
    both = {"data": {"status": "exact", "STATUS": "other"}}
    assert lookup(both, "data.STATUS") == "other"
    assert lookup(both, "data.status") == "exact"


# --- arrays ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "values", "expected"),
    [
        ("NumberIn", [3, 5, 8], (5,), True),
        ("NumberIn", [3, 8], (5,), False),
        ("NumberNotIn", [3, 5, 8], (5,), False),  # any element that matches fails it
        ("NumberNotIn", [3, 8], (5,), True),
        ("NumberGreaterThan", [1, 2, 30], (20,), True),
        ("NumberInRange", [1, 50], ((10, 60),), True),
        ("NumberNotInRange", [1, 50], ((10, 60),), False),
        ("BoolEquals", [False, True], (True,), True),
        ("StringIn", ["a", "Completed"], ("completed",), True),
        ("StringContains", ["abc", "xyz"], ("y",), True),
        ("StringNotContains", ["abc", "xyz"], ("y",), False),
        ("StringNotContains", ["abc", "xyz"], ("q",), True),
        ("StringIn", [5, "5"], ("5",), True),
        ("NumberIn", ["5", 6], (5,), False),  # elements of another type are ignored
        (
            "StringIn",
            [{"a": "b"}, ["b"]],
            ("b",),
            False,
        ),  # no filtering on arrays of objects or nested arrays
        ("StringIn", [], ("a",), False),
        ("StringNotIn", [], ("a",), True),
    ],
)
def test_arrays_are_tested_element_by_element_when_enabled(
    operator: str, value: Any, values: tuple, expected: bool
) -> None:
    assert passes(operator, value, values, arrays=True) is expected


@pytest.mark.parametrize(
    ("operator", "value", "values"),
    [
        ("NumberIn", [5], (5,)),
        ("NumberNotIn", [1], (5,)),
        ("StringIn", ["a"], ("a",)),
        ("StringNotIn", ["b"], ("a",)),
        ("StringNotContains", ["b"], ("a",)),
        ("BoolEquals", [True], (True,)),
    ],
)
def test_an_array_value_matches_no_operator_without_array_filtering(
    operator: str, value: Any, values: tuple
) -> None:
    assert passes(operator, value, values, arrays=True) is True
    assert passes(operator, value, values, arrays=False) is False  # [inferred]


def test_an_array_value_is_not_null() -> None:
    assert passes("IsNotNull", [1], ()) is True
    assert passes("IsNullOrUndefined", [], ()) is False


# --- AND across filters, OR across values ----------------------------------------------------------------------


RUN_ROUTE = (
    AdvancedFilter("StringIn", "data.runStatus", ("Completed", "Failed", "Canceled")),
    AdvancedFilter("StringIn", "data.experimentName", ("mlops",)),
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"runStatus": "Failed", "experimentName": "mlops"}, True),
        ({"runStatus": "canceled", "experimentName": "MLOPS"}, True),
        ({"runStatus": "Running", "experimentName": "mlops"}, False),  # one filter fails: AND
        ({"runStatus": "Completed", "experimentName": "other"}, False),
        ({"experimentName": "mlops"}, False),  # RunCompleted's data has no runStatus
    ],
)
def test_filters_are_anded_and_values_ored(data: dict[str, Any], expected: bool) -> None:
    assert all_match(RUN_ROUTE, event(**data)) is expected


def test_the_same_key_may_be_filtered_twice() -> None:
    text = "The signal 'credit_monitor_data_drift' has failed due to one or more features violating ..."
    filters = (
        AdvancedFilter("StringContains", "data.runTags.tag", ("has failed due to",)),
        AdvancedFilter("StringContains", "data.runTags.tag", ("credit_monitor_data_drift",)),
    )
    assert all_match(filters, event(runTags={"tag": text})) is True
    assert all_match(filters, event(runTags={"tag": text.replace("credit", "churn")})) is False


def test_no_filters_pass_every_event() -> None:
    assert all_match((), event()) is True


# --- reading the table: the ARM shape, and Event Grid's limits --------------------------------------------------


def test_parsed_filters_render_back_to_the_same_arm_objects() -> None:
    raw = [
        {"operatorType": "StringIn", "key": "data.runStatus", "values": ["Completed", "Failed"]},
        {"operatorType": "NumberGreaterThanOrEquals", "key": "data.rows", "value": 30},
        {"operatorType": "NumberNotInRange", "key": "data.rows", "values": [[1, 2], [5, 9.5]]},
        {"operatorType": "BoolEquals", "key": "data.ok", "value": False},
        {"operatorType": "IsNullOrUndefined", "key": "Subject"},
    ]
    assert [f.arm() for f in parse_filters(raw)] == raw


def test_placeholders_are_filled_into_string_values_only() -> None:
    raw = [{"operatorType": "StringIn", "key": "data.experimentName", "values": ["{experiment}"]}]
    [parsed] = parse_filters(raw, lambda text: text.replace("{experiment}", "churn"))
    assert parsed.values == ("churn",)


def test_the_limits_are_event_grids() -> None:
    one = {"operatorType": "StringIn", "key": "data.a", "values": ["x"]}
    assert len(parse_filters([one] * MAX_FILTERS)) == MAX_FILTERS
    values = {"operatorType": "NumberIn", "key": "data.a", "values": list(range(MAX_VALUES))}
    assert parse_filters([values])[0].count() == MAX_VALUES
    longest = {"operatorType": "StringContains", "key": "data.a", "values": ["x" * MAX_STRING_CHARS]}
    assert parse_filters([longest])
    mixed = [values, {"operatorType": "NumberLessThan", "key": "data.b", "value": 1}]
    with pytest.raises(FilterError, match=f"{MAX_VALUES + 1} filter values"):
        parse_filters(mixed)  # a single `value` counts as one of the 25 [inferred]
    ranges = {
        "operatorType": "NumberInRange",
        "key": "data.a",
        "values": [[i, i + 1] for i in range(MAX_VALUES)],
    }
    assert parse_filters([ranges])[0].count() == MAX_VALUES
    with pytest.raises(FilterError, match="26 filter values"):
        parse_filters([ranges, one])  # a [low, high] pair counts as one [inferred]
    presence = {"operatorType": "IsNotNull", "key": "data.a"}
    assert parse_filters([values, presence])  # the null tests carry no value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"not": "a list"}, "must be a list"),
        ([{"operatorType": "StringIn", "key": "data.a", "values": ["x"]}] * 26, "26 advanced filters"),
        (["StringIn"], "must be an object"),
        ([{"operatorType": "stringin", "key": "data.a", "values": ["x"]}], "'stringin' is not one of"),
        ([{"key": "data.a", "values": ["x"]}], "operatorType None"),
        ([{"operatorType": "StringIn", "values": ["x"]}], "`key` must be a non-empty string"),
        ([{"operatorType": "StringIn", "key": "runStatus", "values": ["x"]}], "neither an envelope field"),
        ([{"operatorType": "StringIn", "key": "data", "values": ["x"]}], "neither an envelope field"),
        ([{"operatorType": "StringIn", "key": "data..a", "values": ["x"]}], "neither an envelope field"),
        ([{"operatorType": "StringIn", "key": "data.a", "values": []}], "non-empty list"),
        ([{"operatorType": "StringIn", "key": "data.a", "values": "x"}], "non-empty list, not the string"),
        ([{"operatorType": "StringIn", "key": "data.a", "value": "x"}], "unexpected value"),
        ([{"operatorType": "StringIn", "key": "data.a", "values": [None]}], "strings, not null"),
        ([{"operatorType": "StringIn", "key": "data.a", "values": ["x" * 513]}], "513 characters"),
        ([{"operatorType": "NumberIn", "key": "data.a", "values": ["1"]}], "finite numbers"),
        (
            [{"operatorType": "NumberIn", "key": "data.a", "values": [True]}],
            "finite numbers, not the boolean",
        ),
        ([{"operatorType": "NumberIn", "key": "data.a", "values": [float("nan")]}], "finite numbers"),
        ([{"operatorType": "NumberLessThan", "key": "data.a", "values": [1]}], "takes a key and `value`"),
        ([{"operatorType": "NumberLessThan", "key": "data.a"}], "needs a `value`"),
        ([{"operatorType": "BoolEquals", "key": "data.a", "value": "true"}], "true or false"),
        ([{"operatorType": "NumberInRange", "key": "data.a", "values": [1, 2]}], r"\[low, high\] pair"),
        ([{"operatorType": "NumberInRange", "key": "data.a", "values": [[1, 2, 3]]}], r"\[low, high\] pair"),
        ([{"operatorType": "NumberInRange", "key": "data.a", "values": [[5, 1]]}], "empty"),
        ([{"operatorType": "IsNotNull", "key": "data.a", "values": ["x"]}], "takes a key and no value"),
        ([{"operatorType": "StringIn", "key": "data.a", "values": ["x"], "Key": "y"}], "unexpected Key"),
    ],
)
def test_a_filter_event_grid_would_refuse_is_refused_with_a_reason(raw: Any, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filters(raw)


def test_no_filters_is_an_empty_tuple() -> None:
    assert parse_filters(None) == ()
    assert parse_filters([]) == ()
