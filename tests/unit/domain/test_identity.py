"""Approver identities: Easy Auth's principal in Azure (only when authentication is on), a header locally."""

from __future__ import annotations

import base64
import json

from shared.domain.identity import caller


def principal(name: str) -> str:
    body = {"auth_typ": "aad", "name_typ": "name", "claims": [{"typ": "name", "val": name}]}
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_easy_auth_principal_names_the_approver_when_authentication_is_on() -> None:
    headers = {"X-MS-CLIENT-PRINCIPAL": principal("alice@contoso.com")}
    assert caller(headers, "azure", easy_auth=True) == "alice@contoso.com"


def test_a_principal_header_is_not_trusted_in_azure_without_authentication() -> None:
    assert caller({"x-ms-client-principal": principal("mallory")}, "azure", easy_auth=False) is None


def test_local_approver_comes_from_the_header_or_the_setting() -> None:
    assert caller({"x-mlops-approver": "bob"}, "local", easy_auth=False) == "bob"
    assert caller({}, "local", local_approver="carol", easy_auth=False) == "carol"
    assert caller({}, "local", easy_auth=False) is None
    assert caller({"x-mlops-approver": "bob"}, "azure", easy_auth=True) is None  # no such shortcut in Azure


def test_a_malformed_principal_is_nobody() -> None:
    assert caller({"x-ms-client-principal": "not base64!"}, "azure", easy_auth=True) is None


def app_principal(client_id: str, claim: str = "appid") -> str:
    """An application's own token (client credentials): no name claim, only its client id."""
    body = {
        "auth_typ": "aad",
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "claims": [{"typ": claim, "val": client_id}, {"typ": "idtyp", "val": "app"}],
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_an_application_is_a_caller_only_where_applications_are_accepted() -> None:
    for claim in ("appid", "azp"):
        headers = {"x-ms-client-principal": app_principal("11111111-2222", claim)}
        assert caller(headers, "azure", easy_auth=True) is None  # approvals need a person
        assert caller(headers, "azure", easy_auth=True, applications=True) == "app:11111111-2222"
        assert caller(headers, "azure", easy_auth=False, applications=True) is None
    person = {"x-ms-client-principal": principal("alice@contoso.com")}
    assert caller(person, "azure", easy_auth=True, applications=True) == "alice@contoso.com"


def test_a_principal_of_the_wrong_shape_is_nobody() -> None:
    for decoded in ([], "alice", {"claims": {"name": "alice"}}, {"claims": [{"typ": ["name"], "val": "x"}]}):
        encoded = base64.b64encode(json.dumps(decoded).encode()).decode()
        assert caller({"x-ms-client-principal": encoded}, "local", applications=True) is None
    nested = base64.b64encode(b"[" * 100_000).decode()
    assert caller({"x-ms-client-principal": nested}, "azure", easy_auth=True) is None
