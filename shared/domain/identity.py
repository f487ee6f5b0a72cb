"""Who is calling: the approver of a release, the one asking to retrain.

In Azure, App Service authentication (Easy Auth) signs users in and passes the principal to the function as
the `x-ms-client-principal` header (base64 JSON with claims). Locally there is no sign-in: the identity comes
from the `x-mlops-approver` header or the MLOPS_LOCAL_APPROVER setting. Nothing else is trusted.

A client application signed in with its own credentials (a pipeline's service principal: a token without a
user) carries no name claim. Only where a caller says `applications=True` (asking to retrain, which decides
nothing) is it named by its application id, `app:<client id>`; an approval still needs a person.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping

NAME_CLAIMS = (
    "name",
    "preferred_username",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
)
APPLICATION_CLAIMS = ("appid", "azp")  # the client's id in v1 and v2 access tokens


def caller(
    headers: Mapping[str, str],
    backend: str,
    local_approver: str = "",
    easy_auth: bool | None = None,
    applications: bool = False,
) -> str | None:
    """The caller's name, or None. In Azure the principal header is trusted only when App Service
    authentication is on (it then strips any such header a client sends); otherwise anyone with a function
    key could claim to be an approver. With `applications`, a principal without a name is its client id."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if easy_auth is None:
        easy_auth = os.environ.get("WEBSITE_AUTH_ENABLED", "").lower() == "true"
    principal = lowered.get("x-ms-client-principal")
    if principal and (easy_auth or backend == "local"):
        return _principal_name(principal, applications)
    if backend == "local":
        return lowered.get("x-mlops-approver") or local_approver or None
    return None


def _principal_name(encoded: str, applications: bool = False) -> str | None:
    try:
        principal = json.loads(base64.b64decode(encoded))
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(principal, dict) or not isinstance(principal.get("claims", []), list):
        return None
    claims = {
        c["typ"]: c.get("val")
        for c in principal.get("claims", [])
        if isinstance(c, dict) and isinstance(c.get("typ"), str)
    }
    name_type = principal.get("name_typ")
    for claim in (name_type, *NAME_CLAIMS):
        if isinstance(claim, str) and claims.get(claim):
            return str(claims[claim])
    if applications:
        for claim in APPLICATION_CLAIMS:
            if isinstance(claims.get(claim), str) and claims[claim]:
                return f"app:{claims[claim]}"
    return None
