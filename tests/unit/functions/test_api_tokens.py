"""Approve, reject, roll back and retrain as the Functions runtime calls them, on the azure backend: the
approver is the person an Entra ID token names, verified in the app; the platform's principal header counts
only where it is trusted. Every refusal is a 401 or 403 with its reason, recorded, never a 5xx."""

from __future__ import annotations

import base64
import json

import azure.functions as func
import pytest

from functions import api
from tests.builders import actions, deploy, production_state, release_status, train
from tests.contract.azure_stub import AZURE_SETTINGS
from tests.entra import (
    AUDIENCES,
    TENANT,
    Tenant,
    app_claims,
    bearer,
    person_claims,
    token,
    verifier,
)
from tests.fakes import FakeDeps, make_deps

TOKEN_SETTINGS = {
    **AZURE_SETTINGS,
    "MLOPS_REQUIRE_APPROVAL": "true",
    "MLOPS_TOKEN_TENANT_ID": TENANT,
    "MLOPS_TOKEN_AUDIENCES": ",".join(AUDIENCES),
}


@pytest.fixture()
def tenant() -> Tenant:
    return Tenant()


@pytest.fixture()
def deps(monkeypatch: pytest.MonkeyPatch, tenant: Tenant) -> FakeDeps:
    made = make_deps(**TOKEN_SETTINGS)
    made.tokens = verifier(tenant)
    monkeypatch.setattr(api, "deps", lambda: made)
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    return made


def awaiting(deps: FakeDeps) -> str:
    release = deploy(deps, train(deps))
    deps.endpoints.set_state("model-v1", "Succeeded")
    from shared.handlers.release import advance

    assert advance(release, deps, "reconcile") == "awaiting_approval"
    return release


def call(function, release: str, headers: dict[str, str], body: bytes = b"{}") -> func.HttpResponse:
    request = func.HttpRequest(
        method="POST",
        url=f"https://app.azurewebsites.net/api/releases/{release}/x",
        headers=headers,
        body=body,
        route_params={"release_id": release},
    )
    return function.build().get_user_function()(request)


def answer(response: func.HttpResponse) -> dict:
    return json.loads(response.get_body())


def test_a_person_with_the_approver_role_approves_and_is_recorded(deps: FakeDeps, tenant: Tenant) -> None:
    release = awaiting(deps)

    response = call(
        api.approve, release, bearer(token(person_claims("alice@contoso.com"))), b'{"comment": "ok"}'
    )

    assert response.status_code == 200, answer(response)
    assert release_status(deps, release) == "production"
    [approved] = [e for e in actions(deps, "release.approved") if e.actor == "approve"]
    assert approved.detail["approver"] == "alice@contoso.com" and approved.detail["comment"] == "ok"
    assert tenant.fetches == 1


def test_reject_and_rollback_take_the_same_token(deps: FakeDeps) -> None:
    release = awaiting(deps)
    rejected = call(api.reject, release, bearer(token(person_claims("bob@contoso.com"))))
    assert rejected.status_code == 200 and release_status(deps, release) == "rejected"
    [entry] = [e for e in actions(deps, "release.rejected") if e.actor == "reject"]
    assert entry.detail["approver"] == "bob@contoso.com"

    refused = call(api.rollback, release, {})
    assert refused.status_code == 401
    assert [e.detail["reason"] for e in actions(deps, "approval.refused") if e.actor == "rollback"] == [
        answer(refused)["error"]
    ]


def refusals(deps: FakeDeps) -> list[dict]:
    return [e.detail for e in actions(deps, "approval.refused")]


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "no identity"),
        ({"Authorization": "Basic YWxpY2U6cHc="}, 401, "not `Bearer <access token>`"),
        (bearer("garbage"), 401, "not a JWT"),
        (bearer(token({**person_claims(), "exp": 1_000_000})), 401, "expired"),
        (bearer(token({**person_claims(), "aud": "api://other-app"})), 401, "another audience"),
        (
            bearer(token({**person_claims(), "iss": "https://sts.windows.net/other-tenant/"})),
            401,
            "not issued",
        ),
        (bearer(token(person_claims(), signer="attacker")), 401, "signature does not verify"),
        (bearer(token(person_claims(roles=()))), 403, "does not hold the app role 'MLOps.Approver'"),
        (bearer(token(person_claims(roles=("MLOps.Reader",)))), 403, "does not hold the app role"),
        (bearer(token(app_claims(roles=("MLOps.Approver",)))), 403, "approved by a person"),
        ({"x-mlops-approver": "mallory"}, 401, "no identity"),  # the local shortcut is no identity in Azure
    ],
)
def test_an_unproven_or_unentitled_approver_is_refused_and_recorded(
    deps: FakeDeps, headers: dict[str, str], status: int, reason: str
) -> None:
    release = awaiting(deps)

    response = call(api.approve, release, headers)

    assert response.status_code == status and reason in answer(response)["error"]
    assert (response.headers.get("WWW-Authenticate") == "Bearer") == (status == 401)
    assert refusals(deps) == [{"reason": answer(response)["error"]}]
    assert release_status(deps, release) == "awaiting_approval" and production_state(deps) is None


def test_the_principal_header_is_not_believed_unless_the_platform_is_trusted(
    deps: FakeDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = awaiting(deps)
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    claims = [{"typ": "name", "val": "mallory"}, {"typ": "roles", "val": "MLOps.Approver"}]
    forged = base64.b64encode(json.dumps({"name_typ": "name", "claims": claims}).encode()).decode()

    refused = call(api.approve, release, {"x-ms-client-principal": forged})
    assert refused.status_code == 401 and release_status(deps, release) == "awaiting_approval"

    trusting = make_deps(**TOKEN_SETTINGS, MLOPS_TRUST_PLATFORM_PRINCIPAL="true")
    monkeypatch.setattr(api, "deps", lambda: trusting)
    release = awaiting(trusting)
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "false")  # authentication off: anyone could send the header
    assert call(api.approve, release, {"x-ms-client-principal": forged}).status_code == 401
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    approved = call(api.approve, release, {"x-ms-client-principal": forged})
    assert approved.status_code == 200 and release_status(trusting, release) == "production"


def test_without_a_tenant_a_bearer_token_is_refused_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    untenanted = make_deps(**{**AZURE_SETTINGS, "MLOPS_REQUIRE_APPROVAL": "true"})
    assert untenanted.tokens is None
    monkeypatch.setattr(api, "deps", lambda: untenanted)
    release = awaiting(untenanted)

    response = call(api.approve, release, bearer(token(person_claims())))

    assert response.status_code == 401 and "MLOPS_TOKEN_TENANT_ID" in answer(response)["error"]


def test_keys_that_cannot_be_fetched_are_a_503_to_retry_not_a_crash(deps: FakeDeps, tenant: Tenant) -> None:
    release = awaiting(deps)
    tenant.down = True

    response = call(api.approve, release, bearer(token(person_claims())))

    assert response.status_code == 503 and response.headers.get("Retry-After") == "30"
    assert "could not be fetched" in answer(response)["error"]
    assert len(refusals(deps)) == 1 and release_status(deps, release) == "awaiting_approval"
    tenant.down = False
    assert call(api.approve, release, bearer(token(person_claims()))).status_code == 200


def test_an_application_token_may_ask_to_retrain_and_is_named_by_its_client_id(deps: FakeDeps) -> None:
    response = call(api.retrain, "-", bearer(token(app_claims("c1d2"))), b"")

    assert response.status_code == 202, answer(response)
    [requested] = actions(deps, "training.requested")
    assert requested.detail["requested_by"] == "app:c1d2"


def test_a_retrain_role_when_set_is_required(monkeypatch: pytest.MonkeyPatch, tenant: Tenant) -> None:
    strict = make_deps(**TOKEN_SETTINGS, MLOPS_RETRAIN_ROLE="MLOps.Retrain")
    strict.tokens = verifier(tenant)
    monkeypatch.setattr(api, "deps", lambda: strict)

    refused = call(api.retrain, "-", bearer(token(app_claims("c1d2"))), b"")
    assert refused.status_code == 403 and "MLOps.Retrain" in answer(refused)["error"]
    assert [e.detail for e in actions(strict, "retrain.refused")] == [{"reason": answer(refused)["error"]}]
    allowed = call(api.retrain, "-", bearer(token(app_claims("c1d2", roles=("MLOps.Retrain",)))), b"")
    assert allowed.status_code == 202
    assert call(api.retrain, "-", {}, b"").status_code == 401


def test_the_keys_are_fetched_once_for_many_approvals(deps: FakeDeps, tenant: Tenant) -> None:
    for _ in range(3):
        call(api.approve, "no-such-release", bearer(token(person_claims())))
    assert tenant.fetches == 1
