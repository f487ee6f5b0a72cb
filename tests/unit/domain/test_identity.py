"""Who a request names: a verified token's claims, Easy Auth's principal, the local header; and who may act."""

from __future__ import annotations

import base64
import json

from shared.domain.identity import (
    Caller,
    Refused,
    bearer,
    local_caller,
    principal_caller,
    refusal,
    token_caller,
    token_issuers,
)

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def principal(name: str, *roles: str) -> str:
    claims = [{"typ": "name", "val": name}, *({"typ": "roles", "val": role} for role in roles)]
    body = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": claims}
    return base64.b64encode(json.dumps(body).encode()).decode()


def app_principal(client_id: str, claim: str = "appid") -> str:
    """An application's own token (client credentials): no name claim, only its client id."""
    body = {
        "auth_typ": "aad",
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "claims": [{"typ": claim, "val": client_id}, {"typ": "idtyp", "val": "app"}],
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_the_tenant_issues_v2_and_v1_tokens() -> None:
    assert token_issuers(TENANT) == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0",
        f"https://sts.windows.net/{TENANT}/",
    )


def test_a_bearer_token_is_read_from_the_authorization_header() -> None:
    assert bearer({"Authorization": "Bearer abc.def.ghi"}) == "abc.def.ghi"
    assert bearer({"authorization": "bearer  abc "}) == "abc"
    assert bearer({}) is None
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "abc.def.ghi"):
        refused = bearer({"Authorization": value})
        assert isinstance(refused, Refused) and refused.status == 401
    too_long = bearer({"Authorization": "Bearer " + "a" * 20_000})
    assert isinstance(too_long, Refused) and "over" in too_long.reason


def test_a_person_is_named_by_sign_in_name_then_object_id() -> None:
    v2 = {
        "scp": "access",
        "preferred_username": "alice@contoso.com",
        "oid": "o-1",
        "roles": ["MLOps.Approver"],
    }
    assert token_caller(v2) == Caller("alice@contoso.com", roles=frozenset({"MLOps.Approver"}))
    assert token_caller({"scp": "x", "upn": "bob@contoso.com", "oid": "o-2"}) == Caller(
        "bob@contoso.com", roles=frozenset()
    )
    assert token_caller({"scp": "x", "oid": "o-3"}).name == "o-3"  # type: ignore[union-attr]
    nobody = token_caller({"scp": "x"})
    assert isinstance(nobody, Refused) and nobody.status == 401


def test_an_application_token_is_named_by_its_client_id() -> None:
    for claims in (
        {"idtyp": "app", "azp": "c-1", "oid": "sp-1", "roles": ["MLOps.Retrain"]},  # v2
        {"appid": "c-1", "oid": "sp-1", "sub": "sp-1", "roles": ["MLOps.Retrain"]},  # v1: no scp, no idtyp
    ):
        assert token_caller(claims) == Caller("app:c-1", application=True, roles=frozenset({"MLOps.Retrain"}))
    # an application's token naming a user-like claim is still an application's
    spoof = token_caller({"idtyp": "app", "azp": "c-1", "preferred_username": "alice@contoso.com"})
    assert isinstance(spoof, Caller) and spoof.application
    assert isinstance(token_caller({"idtyp": "app"}), Refused)


def test_roles_of_the_wrong_shape_grant_nothing() -> None:
    for roles in ("MLOps.Approver", [["MLOps.Approver"]], {"MLOps.Approver": True}, None):
        found = token_caller({"scp": "x", "oid": "o", "roles": roles})
        assert isinstance(found, Caller) and found.roles == frozenset()


def test_the_principal_header_names_the_person_and_their_roles() -> None:
    assert principal_caller(principal("alice@contoso.com", "MLOps.Approver")) == Caller(
        "alice@contoso.com", roles=frozenset({"MLOps.Approver"})
    )
    for claim in ("appid", "azp"):
        assert principal_caller(app_principal("11111111-2222", claim)) == Caller(
            "app:11111111-2222", application=True, roles=frozenset()
        )


def test_a_principal_of_the_wrong_shape_is_nobody() -> None:
    assert principal_caller("not base64!") is None
    for decoded in ([], "alice", {"claims": {"name": "alice"}}, {"claims": [{"typ": ["name"], "val": "x"}]}):
        assert principal_caller(base64.b64encode(json.dumps(decoded).encode()).decode()) is None
    assert principal_caller(base64.b64encode(b"[" * 100_000).decode()) is None


def test_local_approver_comes_from_the_header_or_the_setting() -> None:
    assert local_caller({"X-MLOPS-APPROVER": "bob"}) == Caller("bob")
    assert local_caller({}, local_approver="carol") == Caller("carol")
    assert local_caller({}) is None


def test_an_approval_needs_a_person_holding_the_role() -> None:
    alice = Caller("alice", roles=frozenset({"MLOps.Approver"}))
    app = Caller("app:c-1", application=True, roles=frozenset({"MLOps.Approver"}))
    assert refusal(alice, "MLOps.Approver") is None
    assert refusal(app, "MLOps.Approver") == Refused(
        403, "app:c-1 is an application: a release is approved by a person"
    )
    assert refusal(app, "MLOps.Approver", applications=True) is None
    lacking = refusal(Caller("bob", roles=frozenset({"Reader"})), "MLOps.Approver")
    assert lacking == Refused(403, "bob does not hold the app role 'MLOps.Approver'")
    assert refusal(Caller("bob", roles=frozenset()), "") is None  # no role asked for
    assert refusal(Caller("dev"), "MLOps.Approver") is None  # the local header carries no roles
