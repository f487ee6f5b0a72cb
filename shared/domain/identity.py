"""Who is calling (the approver of a release, the one asking to retrain), and whether they may.

Three sources, in this order of trust:
- an Entra ID access token (`Authorization: Bearer ...`) that the app verified itself (the verifier checks its
  issuer, audience, signature and lifetime; here only its claims are read): a person is named by
  `preferred_username` (v2), `upn` (v1), else the object id `oid`; an application's own token (client
  credentials: `idtyp=app`, or no delegated scope `scp`) by its client id, `app:<azp or appid>`;
- App Service authentication's `x-ms-client-principal` header (base64 JSON with claims), believed in Azure only
  where the platform is known to enforce it, and always on the local host, which plays the platform;
- locally, the `x-mlops-approver` header or the MLOPS_LOCAL_APPROVER setting. Nothing else is trusted.

The first two carry the caller's app roles (`roles`); an approval needs a person holding the approver role.
A request to retrain decides nothing: an application may ask, and a role is needed only if one is set.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NAME_CLAIMS = (
    "name",
    "preferred_username",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
)
PERSON_CLAIMS = ("preferred_username", "upn", "unique_name", "oid")  # v2's sign-in name, v1's, the object id
APPLICATION_CLAIMS = ("azp", "appid")  # the client's id in v2 and v1 access tokens
ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
MAX_NAME = 256  # characters of a caller's name kept in records
MAX_TOKEN = 16 * 1024  # bytes of a bearer token read at all: Entra's are a few KB


@dataclass(frozen=True)
class Caller:
    name: str  # as recorded: a person's sign-in name, or `app:<client id>`
    application: bool = False  # an application's own token: no person behind it
    roles: frozenset[str] | None = None  # the app roles; None: a source without roles (the local header)


@dataclass(frozen=True)
class Refused:
    status: int  # 401: no proof of who is calling; 403: known, not allowed; 503: the keys are unavailable
    reason: str


def token_issuers(tenant_id: str) -> tuple[str, str]:
    """The tenant's issuers: of v2.0 access tokens, and of v1.0 ones (an app registration whose manifest leaves
    `accessTokenAcceptedVersion` unset is sent v1 tokens, as `az account get-access-token` gets them)."""
    return f"https://login.microsoftonline.com/{tenant_id}/v2.0", f"https://sts.windows.net/{tenant_id}/"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def bearer(headers: Mapping[str, str]) -> str | Refused | None:
    """The bearer token a request carries, None without an Authorization header."""
    value = _header(headers, "authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Refused(401, "the Authorization header is not `Bearer <access token>`")
    if len(token) > MAX_TOKEN:
        return Refused(401, f"the bearer token is over {MAX_TOKEN} bytes")
    return token.strip()


def token_caller(claims: Mapping[str, Any]) -> Caller | Refused:
    """The caller a verified token names."""
    roles = claims.get("roles", [])
    granted = frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset()
    idtyp = claims.get("idtyp")
    if idtyp == "app" or (idtyp is None and "scp" not in claims):
        client = _first(claims, APPLICATION_CLAIMS)
        if client is None:
            return Refused(401, "the application's token names no client (azp, appid)")
        return Caller(f"app:{client}", application=True, roles=granted)
    person = _first(claims, PERSON_CLAIMS)
    if person is None:
        return Refused(401, "the token names nobody (preferred_username, upn, oid)")
    return Caller(person, roles=granted)


def _first(claims: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    found = next((claims[n] for n in names if isinstance(claims.get(n), str) and claims[n].strip()), None)
    return found.strip()[:MAX_NAME] if found is not None else None


def principal_caller(encoded: str) -> Caller | None:
    """The caller App Service authentication's principal header names, None if it names nobody. A principal
    without a name claim is an application, named by its client id."""
    try:
        principal = json.loads(base64.b64decode(encoded))
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(principal, dict) or not isinstance(principal.get("claims", []), list):
        return None
    pairs = [
        (c["typ"], c.get("val"))
        for c in principal.get("claims", [])
        if isinstance(c, dict) and isinstance(c.get("typ"), str) and isinstance(c.get("val"), str)
    ]
    claims = dict(pairs)
    role_types = {*ROLE_CLAIMS, principal.get("role_typ")}
    roles = frozenset(value for typ, value in pairs if typ in role_types)
    name_type = principal.get("name_typ")
    for claim in (name_type, *NAME_CLAIMS):
        if isinstance(claim, str) and claims.get(claim):
            return Caller(claims[claim][:MAX_NAME], roles=roles)
    client = _first(claims, APPLICATION_CLAIMS)
    return Caller(f"app:{client}", application=True, roles=roles) if client else None


def local_caller(headers: Mapping[str, str], local_approver: str = "") -> Caller | None:
    """Locally, where nobody signs in: the `x-mlops-approver` header, else MLOPS_LOCAL_APPROVER."""
    name = (_header(headers, "x-mlops-approver") or local_approver).strip()
    return Caller(name[:MAX_NAME]) if name else None


def refusal(caller: Caller, role: str, applications: bool = False) -> Refused | None:
    """Why `caller` may not act, None if they may: an approval (`applications` False) needs a person; where
    the source carries roles and `role` is set, the caller must hold it."""
    if caller.application and not applications:
        return Refused(403, f"{caller.name} is an application: a release is approved by a person")
    if role and caller.roles is not None and role not in caller.roles:
        return Refused(403, f"{caller.name} does not hold the app role {role!r}")
    return None
