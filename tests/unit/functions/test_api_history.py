"""GET /api/history as the Functions runtime calls it, on the fakes: the timeline, `?at=`, and bad questions."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from functions import api
from shared.handlers.release import advance, roll_back
from tests.builders import MODEL, second_release
from tests.fakes import FakeDeps, make_deps


@pytest.fixture()
def deps(monkeypatch: pytest.MonkeyPatch) -> FakeDeps:
    made = make_deps(MLOPS_CANARY_SECONDS="0")
    monkeypatch.setattr(api, "deps", lambda: made)
    return made


def get(params: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest(
        method="GET", url="http://127.0.0.1:7071/api/history", headers={}, params=params or {}, body=b""
    )
    return api.history(request)


def answer(response: func.HttpResponse) -> dict:
    return json.loads(response.get_body())


def rolled_back(deps: FakeDeps) -> tuple[str, str, str]:
    """v1 promoted, v2 promoted, v2 rolled back by alice: the three moments, as the clock wrote them."""
    rid = second_release(deps)
    first = deps.clock().isoformat()
    deps.clock.advance(3600)
    assert advance(rid, deps, "reconcile") == "production"
    second = deps.clock().isoformat()
    deps.clock.advance(3600)
    assert roll_back(rid, "alice", "complaints", deps)[0] == 200
    return first, second, deps.clock().isoformat()


def test_the_timeline_says_what_served_when_and_how(deps: FakeDeps) -> None:
    _, promoted, restored = rolled_back(deps)

    response = get()

    assert response.status_code == 200
    body = answer(response)
    assert body["model"] == MODEL and body["ignored_entries"] == 0 and "at" not in body
    assert [(p["version"], p["how"], p["until"]) for p in body["periods"]] == [
        ("1", "promoted", promoted),
        ("2", "promoted", restored),
        ("1", "restored", None),
    ]
    assert body["periods"][2]["by"] == "alice" and body["periods"][2]["reason"] == "complaints"
    assert body["periods"][1]["deployment"] == "model-v2"


def test_at_a_time_it_names_the_version_serving_then(deps: FakeDeps) -> None:
    before, promoted, restored = rolled_back(deps)

    body = answer(get({"at": promoted.replace("+00:00", "Z")}))

    assert body["at"] == promoted and body["serving"]["version"] == "2"
    assert answer(get({"at": before}))["serving"]["version"] == "1"
    assert answer(get({"at": restored}))["serving"]["how"] == "restored"
    local = before.replace("+00:00", "+02:00")  # two hours earlier in UTC: before v1 served
    assert answer(get({"at": local}))["serving"] is None


def test_before_anything_was_promoted_nothing_served(deps: FakeDeps) -> None:
    rolled_back(deps)

    body = answer(get({"at": "2001-01-01"}))

    assert body["serving"] is None and body["at"] == "2001-01-01T00:00:00+00:00"


def test_a_system_that_never_promoted_has_an_empty_history(deps: FakeDeps) -> None:
    assert answer(get()) == {"model": MODEL, "periods": [], "ignored_entries": 0}
    assert answer(get({"at": "now"}))["serving"] is None


def test_another_model_is_asked_by_name(deps: FakeDeps) -> None:
    rolled_back(deps)

    body = answer(get({"model": "someone-else"}))

    assert body == {"model": "someone-else", "periods": [], "ignored_entries": 0}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"at": "next tuesday"}, "is not a time"),
        ({"at": ""}, "a time is needed"),
        ({"at": "9999-12-31T23:59:59-01:00"}, "out of range"),
        ({"at": "x" * 5000}, "at most 64 characters"),
        ({"model": ""}, "`model` must be a model name"),
        ({"model": "m" * 300}, "`model` must be a model name"),
        ({"model": "bad\nname"}, "`model` must be a model name"),
    ],
)
def test_a_bad_question_is_a_400_with_the_reason(deps: FakeDeps, params: dict[str, str], reason: str) -> None:
    response = get(params)

    assert response.status_code == 400
    assert reason in answer(response)["error"]
