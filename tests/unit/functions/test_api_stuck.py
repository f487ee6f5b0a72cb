"""POST /api/stuck/retry as the Functions runtime calls it, on the fakes: an approver hands a record set aside as
stuck back to the handlers, and the next tick moves it on."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from functions import api
from shared.handlers import reconcile
from shared.handlers.queries import status
from tests.builders import actions, deploy, release_status, train
from tests.fakes import FakeDeps, make_deps

ALICE = {"x-mlops-approver": "alice"}


@pytest.fixture()
def deps(monkeypatch: pytest.MonkeyPatch) -> FakeDeps:
    made = make_deps(MLOPS_MAX_ATTEMPTS="1")
    monkeypatch.setattr(api, "deps", lambda: made)
    return made


def post(body: bytes | object, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = func.HttpRequest(
        method="POST", url="http://127.0.0.1:7071/api/stuck/retry", headers=headers or {}, body=raw
    )
    response = api.retry_stuck(request)
    return response.status_code, json.loads(response.get_body())


def _stuck_release(deps: FakeDeps) -> str:
    rid = deploy(deps, train(deps))
    deps.endpoints.fail_once("deployment", ConnectionError("endpoint API unavailable"))
    with pytest.raises(RuntimeError):
        reconcile.reconcile(deps)
    assert [s["key"] for s in status(deps)["stuck"]] == [f"releases/{rid}"]
    return rid


def test_an_approver_hands_a_stuck_release_back_and_the_next_tick_moves_it_on(deps: FakeDeps) -> None:
    rid = _stuck_release(deps)
    deps.endpoints.set_state("model-v1", "Succeeded")

    code, body = post({"key": f"releases/{rid}"}, ALICE)

    assert (code, body["ok"]) == (200, True)
    [handed_back] = actions(deps, "record.released")
    assert handed_back.actor == "alice" and handed_back.subject == f"releases/{rid}"
    reconcile.reconcile(deps)
    assert release_status(deps, rid) == "production" and status(deps)["stuck"] == []
    assert post({"key": f"releases/{rid}"}, ALICE)[0] == 409  # no longer stuck


def test_nobody_unnamed_may_hand_a_record_back(deps: FakeDeps) -> None:
    rid = _stuck_release(deps)

    code, _ = post({"key": f"releases/{rid}"})

    assert code == 401 and status(deps)["stuck"] != []
    assert [e.action for e in actions(deps, "retry.refused")] == ["retry.refused"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"key": "production/mlops-model"}, 400),
        ({"key": "releases/"}, 400),
        ({"key": "releases/../production/x"}, 400),
        ({"key": ["releases/x"]}, 400),
        ({"key": None}, 400),
        ([1, 2], 400),
        (b"\xff not json", 400),
        ({"key": "releases/nothing-here"}, 404),
    ],
)
def test_a_key_that_names_no_record_is_refused_by_name(deps: FakeDeps, body: object, expected: int) -> None:
    code, answer = post(body, ALICE)

    assert code == expected
    assert answer.get("ok") is not True
