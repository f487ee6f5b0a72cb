"""What `mlops status`, `lineage`, `history` and `dead-letters` print for a person, from the API's JSON as it is
and as it may come (any JSON value in any field)."""

from __future__ import annotations

import copy
from datetime import UTC
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.tools import views
from shared.tools.tables import width
from tests.hostile import json_values

STATUS = {
    "model": "m",
    "production": {
        "model": "m",
        "version": "2",
        "deployment": "m-v2",
        "release": "m-v2",
        "since": "2026-11-24T15:00:00.123456+00:00",
        "previous": {"model": "m", "version": "1", "deployment": "m-v1", "release": "m-v1", "since": "x"},
    },
    "traffic": {"m-v2": 80, "m-v3": 20},
    "training_request": {"id": "req-1", "causes": ["data", "drift"], "events": ["e1", "e2"], "waiting": None},
    "runs_in_flight": ["run-9"],
    "active_releases": ["m-v3"],
    "releases": [{"id": "m-v3", "version": "3", "status": "canary", "since": "2026-11-24T16:00:00+00:00"}],
    "stuck": [
        {
            "key": "runs/run-4",
            "status": "running",
            "at": "2026-11-24T16:01:00+00:00",
            "attempts": 5,
            "reason": "ConnectionError: the workspace did not answer",
        },
    ],
    "recent_decisions": [
        {
            "time": "2026-11-24T16:02:00+00:00",
            "actor": "reconcile",
            "action": "release.canary",
            "subject": "m-v3",
        },
    ],
}
LINEAGE = {
    "model": "m:2",
    "run_id": "run-2",
    "dataset_version": "v0002",
    "files": [
        {"name": "batch-1.csv", "rows": 20, "sha256": "ab" * 32},
        {"name": "batch-2.csv", "rows": 30, "sha256": "cd" * 32},
    ],
    "retracted": [],
    "causes": ["data"],
    "trigger_events": ["e1"],
    "metrics": {"rmse": 2.0, "r2": 0.91},
    "champion": "m:1",
    "champion_metrics": {"rmse": 3.0, "r2": 0.88},
    "gates": [
        {"gate": "rmse<=5", "passed": True, "value": 2.0, "threshold": 5.0, "reason": "rmse 2 <= 5"},
        {"gate": "min_improvement", "passed": False, "value": 0.01, "threshold": 0.02, "reason": "too small"},
    ],
    "code_version": None,
    "model_sha256": "ef" * 32,
    "release": {
        "id": "m-v2",
        "status": "production",
        "history": [
            {"status": "deploying", "at": "2026-11-24T15:00:00+00:00", "detail": {}},
            {"status": "production", "at": "2026-11-24T15:05:00+00:00", "detail": {"previous": "1"}},
        ],
    },
    "steps": [],
}
HISTORY = {
    "model": "m",
    "periods": [
        {
            "model": "m",
            "version": "1",
            "deployment": "m-v1",
            "release": "m-v1",
            "since": "2026-11-24T09:00:00+00:00",
            "until": "2026-11-24T12:00:00+00:00",
            "how": "promoted",
            "by": "reconcile",
            "approved_by": None,
            "reason": None,
            "ended": "replaced by 2",
        },
        {
            "model": "m",
            "version": "2",
            "deployment": "m-v2",
            "release": "m-v2",
            "since": "2026-11-24T12:00:00+00:00",
            "until": "2026-11-24T13:00:00+00:00",
            "how": "promoted",
            "by": "approve",
            "approved_by": "carol",
            "reason": None,
            "ended": "rolled back by alice",
        },
        {
            "model": "m",
            "version": "1",
            "deployment": "m-v1",
            "release": "m-v1",
            "since": "2026-11-24T13:00:00+00:00",
            "until": None,
            "how": "restored",
            "by": "alice",
            "approved_by": None,
            "reason": "complaints",
            "ended": None,
        },
    ],
    "ignored_entries": 0,
}
LETTERS = [
    {
        "id": "data-landed/evt-1",
        "subscription": "data-landed",
        "function": "on_data_landed",
        "event": {"eventType": "Microsoft.Storage.BlobCreated"},
        "deliveryAttempts": 4,
        "deadLetteredAt": "2026-11-24T16:00:00+00:00",
        "lastDeliveryOutcome": "RuntimeError: boom",
    },
    {
        "id": "mlops/evt-2",
        "subscription": "mlops",
        "event": {"type": "MLOps.DriftDetected"},
        "deliveryAttempts": 2,
        "lastDeliveryOutcome": "ValueError: bad",
    },
]


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_status_says_what_serves_with_the_split_then_what_is_on_its_way() -> None:
    shown = views.status(STATUS, columns=100, zone=UTC)

    assert "production        m:2" in shown and "since             2026-11-24 15:00:00" in shown
    assert "traffic           m-v2 80%, m-v3 20%" in shown
    assert "training request  req-1: data, drift, 2 event(s)" in shown
    assert "runs in flight    run-9" in shown and "rollback to       version 1" in shown
    assert "m-v3     3        canary  2026-11-24 16:00:00" in shown
    assert (
        "runs/run-4  running  2026-11-24 16:01:00  5         ConnectionError: the workspace did not answer"
        in shown
    )
    assert "2026-11-24 16:02:00  reconcile  release.canary  m-v3" in shown


def test_status_of_a_fresh_system_says_so() -> None:
    fresh = {
        "model": "m",
        "production": None,
        "traffic": {},
        "training_request": None,
        "runs_in_flight": [],
        "active_releases": [],
        "releases": [],
        "stuck": [],
        "recent_decisions": [],
    }

    shown = views.status(fresh, columns=100, zone=UTC)

    assert "nothing serves m yet" in shown and "no deployments" in shown and "none open" in shown
    assert "Releases on their way: none" in shown and "Stuck: none" in shown


def test_status_from_an_app_without_release_statuses_lists_the_ids() -> None:
    older = {k: v for k, v in STATUS.items() if k != "releases"}

    assert "m-v3     -        -       -" in views.status(older, columns=100, zone=UTC)


def test_lineage_shows_gates_pass_or_fail_and_metrics_against_the_champion() -> None:
    shown = views.lineage(LINEAGE, columns=120, zone=UTC)

    assert "dataset version  v0002 (2 files, 50 rows)" in shown and "champion         m:1" in shown
    assert "rmse<=5          2      5          pass    rmse 2 <= 5" in shown
    assert "min_improvement  0.01   0.02       FAIL    too small" in shown
    assert "rmse    2           3         -1" in shown and "r2      0.91        0.88      0.03" in shown
    assert "production  2026-11-24 15:05:00  previous=1" in shown


def test_lineage_of_a_first_model_has_no_champion_numbers() -> None:
    first = {**LINEAGE, "champion": None, "champion_metrics": None, "release": None}

    shown = views.lineage(first, columns=120, zone=UTC)

    assert "none (the first model)" in shown and "rmse    2           -         -" in shown
    assert "Release: none (not released)" in shown


def test_history_is_a_timeline_with_how_each_version_got_there() -> None:
    shown = lines(views.history(HISTORY, columns=140, zone=UTC))

    assert shown[1].split()[:3] == ["FROM", "UNTIL", "VERSION"]
    assert shown[2].startswith("2026-11-24 09:00:00  2026-11-24 12:00:00  1 ")
    assert shown[3].endswith("promoted by approve, approved by carol")
    assert "now" in shown[4] and shown[4].endswith("restored by a rollback, by alice (complaints)")


def test_history_at_a_time_names_the_one_version_or_says_nothing_served() -> None:
    at = {"model": "m", "at": "2026-11-24T12:30:00+00:00", "serving": HISTORY["periods"][1], "periods": []}

    shown = views.history(at, columns=100, zone=UTC)

    assert "serving     m:2" in shown and "from        2026-11-24 12:00:00" in shown
    assert "how         promoted by approve, approved by carol" in shown
    empty = views.history({**at, "serving": None}, columns=100, zone=UTC)
    assert empty == "nothing was in production for m at 2026-11-24 12:30:00"
    assert "nothing has served production for m" in views.history({"model": "m", "periods": []}, columns=80)


def test_dead_letters_are_a_table_with_the_last_error() -> None:
    shown = lines(views.dead_letters(LETTERS, columns=140, zone=UTC))

    assert shown[0].split() == [
        "ID",
        "SUBSCRIPTION",
        "EVENT",
        "TYPE",
        "ATTEMPTS",
        "DEAD-LETTERED",
        "LAST",
        "ERROR",
    ]
    assert (
        "data-landed/evt-1" in shown[1]
        and "Microsoft.Storage.BlobCreated" in shown[1]
        and "RuntimeError: boom" in shown[1]
    )
    assert "MLOps.DriftDetected" in shown[2] and shown[-1] == "2 dead-lettered event(s)"
    assert views.dead_letters([], columns=80) == "no dead-lettered events"


def test_every_line_fits_the_terminal() -> None:
    long = copy.deepcopy(STATUS)
    long["stuck"][0]["reason"] = "Traceback: " + "very long error " * 40
    for view, answer in (
        (views.status, long),
        (views.lineage, LINEAGE),
        (views.history, HISTORY),
        (views.dead_letters, LETTERS),
    ):
        for columns in (40, 80):
            assert all(width(line) <= columns for line in lines(view(answer, columns=columns))), view


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _replaced(answer: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    changed = copy.deepcopy(answer)
    inner = changed
    for step in path[:-1]:
        inner = inner[step]
    inner[path[-1]] = value
    return changed


CASES = [
    (view, answer, path)
    for view, answer in (
        (views.status, STATUS),
        (views.lineage, LINEAGE),
        (views.history, HISTORY),
        (views.dead_letters, LETTERS),
    )
    for path in _paths(answer)
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(case=st.sampled_from(CASES), value=json_values, columns=st.integers(20, 200))
def test_any_json_value_in_any_field_prints_without_a_crash_and_fits(
    case: Any, value: Any, columns: int
) -> None:
    view, answer, path = case

    shown = view(_replaced(answer, path, value), columns=columns, zone=UTC)

    assert all(width(line) <= columns for line in lines(shown))
    assert "\x1b" not in shown
