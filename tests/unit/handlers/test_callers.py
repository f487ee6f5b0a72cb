"""Which source names the caller, on the local backend: a token when a tenant is configured, the platform's
header as the local host plays the platform, else the local header; a token sent is never overruled."""

from __future__ import annotations

import base64
import json

from shared.domain.identity import Caller, Refused
from shared.handlers.callers import identify
from tests.entra import APPROVER, AUDIENCES, TENANT, Tenant, bearer, person_claims, token, verifier
from tests.fakes import make_deps


def test_locally_the_header_names_the_approver_and_a_token_without_a_tenant_is_ignored() -> None:
    deps = make_deps(MLOPS_LOCAL_APPROVER="carol")
    assert identify({"x-mlops-approver": "bob"}, deps, APPROVER) == Caller("bob")
    assert identify({}, deps, APPROVER) == Caller("carol")
    assert identify({**bearer("anything"), "x-mlops-approver": "bob"}, deps, APPROVER) == Caller("bob")


def test_locally_with_a_tenant_a_token_is_verified_and_a_bad_one_is_not_overruled_by_the_header() -> None:
    deps = make_deps(MLOPS_TOKEN_TENANT_ID=TENANT, MLOPS_TOKEN_AUDIENCES=",".join(AUDIENCES))
    deps.tokens = verifier(Tenant())
    good = identify(bearer(token(person_claims("dana@contoso.com"))), deps, APPROVER)
    assert isinstance(good, Caller) and good.name == "dana@contoso.com"
    forged = {**bearer(token(person_claims(), signer="attacker")), "x-mlops-approver": "bob"}
    refused = identify(forged, deps, APPROVER)
    assert isinstance(refused, Refused) and refused.status == 401


def test_the_local_host_plays_the_platform_and_its_principal_is_held_to_the_role() -> None:
    deps = make_deps()

    def principal(*roles: str) -> dict[str, str]:
        claims = [{"typ": "name", "val": "erin"}, *({"typ": "roles", "val": r} for r in roles)]
        encoded = base64.b64encode(json.dumps({"name_typ": "name", "claims": claims}).encode()).decode()
        return {"x-ms-client-principal": encoded}

    assert identify(principal(APPROVER), deps, APPROVER) == Caller("erin", roles=frozenset({APPROVER}))
    assert identify(principal(), deps, APPROVER) == Refused(
        403, f"erin does not hold the app role {APPROVER!r}"
    )
    assert identify({"x-ms-client-principal": "garbage"}, deps, APPROVER).status == 401  # type: ignore[union-attr]
