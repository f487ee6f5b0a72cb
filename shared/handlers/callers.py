"""Who is calling an HTTP function that decides something, and whether they may (`shared.domain.identity`
says what each source is worth; this picks the source and asks the verifier)."""

from __future__ import annotations

from collections.abc import Mapping

from shared.deps import Deps
from shared.domain.identity import (
    Caller,
    Refused,
    bearer,
    local_caller,
    principal_caller,
    refusal,
    token_caller,
)
from shared.ports import TokenKeysUnavailable, TokenRefused

NO_IDENTITY = "no identity: send an Entra ID access token for this app (Authorization: Bearer <token>)"


def identify(
    headers: Mapping[str, str],
    deps: Deps,
    role: str,
    *,
    applications: bool = False,
    platform_auth: bool = False,
) -> Caller | Refused:
    """The caller if they may act with `role` (an application only where `applications`), else why not.
    `platform_auth`: App Service authentication is on (`WEBSITE_AUTH_ENABLED`), as the entry point sees it."""
    found = _authenticate(headers, deps, platform_auth)
    if isinstance(found, Refused):
        return found
    return refusal(found, role, applications) or found


def _authenticate(headers: Mapping[str, str], deps: Deps, platform_auth: bool) -> Caller | Refused:
    settings = deps.settings
    local = settings.backend == "local"
    token = bearer(headers)
    if isinstance(token, Refused):
        return token
    if token is not None and deps.tokens is not None:
        try:
            return token_caller(deps.tokens.verify(token))
        except TokenRefused as error:
            return Refused(401, str(error))
        except TokenKeysUnavailable as error:
            return Refused(503, str(error))
    principal = next((v for k, v in headers.items() if k.lower() == "x-ms-client-principal"), None)
    if principal and (local or (settings.approvers.trust_platform_principal and platform_auth)):
        return principal_caller(principal) or Refused(401, "the x-ms-client-principal header names nobody")
    if local and (found := local_caller(headers, settings.local.approver)) is not None:
        return found
    if token is not None:
        return Refused(401, "this app verifies no bearer tokens: MLOPS_TOKEN_TENANT_ID is not set")
    return Refused(401, NO_IDENTITY)
