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
