"""POST /api/retrain as the Functions runtime calls it, on the fakes: who may ask, what the body may say."""

from __future__ import annotations

import base64
import json

import azure.functions as func
import pytest

from functions import api
from tests.builders import actions, request_state
from tests.fakes import FakeDeps, make_deps

SHA = "0123456789abcdef0123456789abcdef01234567"
ALICE = {"x-mlops-approver": "alice"}


@pytest.fixture()
def deps(monkeypatch: pytest.MonkeyPatch) -> FakeDeps:
    made = make_deps()
    monkeypatch.setattr(api, "deps", lambda: made)
    return made


def post(body: bytes | object = b"", headers: dict[str, str] | None = None) -> func.HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = func.HttpRequest(
        method="POST", url="http://127.0.0.1:7071/api/retrain", headers=headers or {}, body=raw
    )
    return api._retrain(request)


def answer(response: func.HttpResponse) -> dict:
    return json.loads(response.get_body())


def test_an_empty_request_asks_by_hand(deps: FakeDeps) -> None:
    response = post(headers=ALICE)

    assert response.status_code == 202
    body = answer(response)
    assert body["cause"] == "manual" and body["id"].startswith("retrain:") and body["run"] is None
    assert body["request"] == request_state(deps)["id"]
    [requested] = actions(deps, "training.requested")
    assert requested.subject == body["id"]
    assert requested.detail == {
        "cause": "manual",
        "event_id": body["id"],
        "reason": None,
        "code_version": None,
        "requested_by": "alice",
    }
    assert answer(post(headers=ALICE))["id"] != body["id"]  # no key: each request is a new one


def test_a_code_version_asks_with_the_cause_code(deps: FakeDeps) -> None:
    response = post({"reason": "merged #12", "code_version": SHA}, ALICE)

    assert response.status_code == 202 and answer(response)["cause"] == "code"
    [requested] = actions(deps, "training.requested")
    assert requested.detail["cause"] == "code"
    assert (requested.detail["reason"], requested.detail["code_version"]) == ("merged #12", SHA)


@pytest.mark.parametrize("header", ["Idempotency-Key", "x-ms-client-request-id"])
def test_a_retry_with_the_same_key_asks_once(deps: FakeDeps, header: str) -> None:
    headers = {**ALICE, header: f"code-{SHA}"}
    first, retried = post({"code_version": SHA}, headers), post({"code_version": SHA}, headers)

    assert first.status_code == retried.status_code == 202
    assert answer(first) == answer(retried) and answer(first)["id"] == f"retrain:code-{SHA}"
    assert len(actions(deps, "training.requested")) == 1
    assert request_state(deps)["events"] == [f"retrain:code-{SHA}"]


def test_no_identity_is_refused_and_recorded(deps: FakeDeps) -> None:
    response = post({"reason": "r"})

    assert response.status_code == 401 and "no identity" in answer(response)["error"]
    [refused] = actions(deps, "retrain.refused")
    assert refused.detail == {"reason": answer(response)["error"]}
    assert actions(deps, "training.requested") == [] and request_state(deps) is None


def test_an_application_may_retrain_but_not_approve(deps: FakeDeps) -> None:
    claims = {"claims": [{"typ": "appid", "val": "c1d2"}], "name_typ": "name"}
    headers = {"x-ms-client-principal": base64.b64encode(json.dumps(claims).encode()).decode()}

    assert post(b"", headers).status_code == 202
    assert actions(deps, "training.requested")[0].detail["requested_by"] == "app:c1d2"
    approval = api._decide(
        func.HttpRequest(
            method="POST",
            url="http://h/api/x",
            headers=headers,
            body=b"{}",
            route_params={"release_id": "r-1"},
        ),
        "approve",
    )
    assert approval.status_code == 403


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\x80", "not JSON"),
        ([], "must be a JSON object"),
        ("retrain", "must be a JSON object"),
        (None, "must be a JSON object"),
        (7, "must be a JSON object"),
        ({"reason": 7}, "reason must be a string"),
        ({"reason": {"nested": True}}, "reason must be a string"),
        ({"code_version": ["a"]}, "code_version must be a string"),
        ({"code_version": False}, "code_version must be a string"),
        ({"code_version": "two words"}, "no spaces"),
        ({"code_version": "c" * 201}, "at most 200"),
        ({"reason": "r" * 1001}, "at most 1000"),
        ({"reason": "ok", "force": True}, "unknown field(s) 'force'"),
        (b"[" * 100_000, "bytes; at most"),
    ],
)
def test_a_bad_body_is_a_400_with_the_reason_recorded(deps: FakeDeps, body: object, reason: str) -> None:
    response = post(body if isinstance(body, bytes) else json.dumps(body).encode(), ALICE)

    assert response.status_code == 400 and reason in answer(response)["error"]
    [rejected] = actions(deps, "retrain.rejected")
    assert rejected.detail == {"reason": answer(response)["error"], "requested_by": "alice"}
    assert actions(deps, "training.requested") == [] and request_state(deps) is None


def test_a_bad_idempotency_key_is_a_400(deps: FakeDeps) -> None:
    response = post(b"", {**ALICE, "Idempotency-Key": "x" * 129})

    assert response.status_code == 400 and "Idempotency-Key" in answer(response)["error"]
    assert len(actions(deps, "retrain.rejected")) == 1 and request_state(deps) is None


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe not utf-8", b"[" * 5_000 + b"]" * 5_000, b"{" * 20_000, b"x" * 20_000, b"{not json"],
)
def test_an_approval_body_that_cannot_be_read_is_a_400(deps: FakeDeps, body: bytes) -> None:
    request = func.HttpRequest(
        method="POST", url="http://h/api/x", headers=ALICE, body=body, route_params={"release_id": "r-1"}
    )
    assert api._decide(request, "approve").status_code == 400
