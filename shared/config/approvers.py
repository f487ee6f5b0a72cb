"""Who may approve, reject or roll back a release, and ask to retrain: the Entra ID tenant and app registration
whose bearer tokens the app verifies itself, the app roles they must carry, and whether the platform's
principal header is believed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from shared.config.declare import BOOLEAN, STRIPPED, ConfigError, Parser, setting

_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _tenant(name: str, text: str) -> str:
    tenant = text.strip().lower()
    # A token's issuer names the tenant by its id, never by a domain name: anything else would match no token.
    if tenant and not _GUID.fullmatch(tenant):
        raise ConfigError(f"{name} must be the tenant's id (a GUID), not {text!r}")
    return tenant


def _audiences(name: str, text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


TENANT = Parser("tenant id (GUID)", _tenant)
AUDIENCES = Parser("text, comma-separated", _audiences)


@dataclass(frozen=True)
class ApproverSettings:
    title: ClassVar[str] = "Approvers (who may approve, reject, roll back and retrain)"

    tenant_id: str = setting(
        "MLOPS_TOKEN_TENANT_ID",
        "",
        TENANT,
        "Entra ID tenant whose bearer tokens (`Authorization: Bearer`) the app verifies itself: v2 and v1 "
        "issuers of this tenant, RS256 signatures by its published keys. Empty: bearer tokens are not accepted.",
    )
    audiences: tuple[str, ...] = setting(
        "MLOPS_TOKEN_AUDIENCES",
        "",
        AUDIENCES,
        "The audiences a token must be for: the app registration's client id and its App ID URI "
        "(`api://<client id>`). Required with `MLOPS_TOKEN_TENANT_ID`.",
    )
    approver_role: str = setting(
        "MLOPS_APPROVER_ROLE",
        "MLOps.Approver",
        STRIPPED,
        "App role (the token's `roles` claim) a person needs to approve, reject or roll back a release.",
    )
    retrain_role: str = setting(
        "MLOPS_RETRAIN_ROLE",
        "",
        STRIPPED,
        "App role a caller (a person or an application) needs to ask to retrain; empty: any verified caller.",
    )
    trust_platform_principal: bool = setting(
        "MLOPS_TRUST_PLATFORM_PRINCIPAL",
        "false",
        BOOLEAN,
        "Azure: believe App Service authentication's `x-ms-client-principal` header (when "
        "`WEBSITE_AUTH_ENABLED` is true). Only where the platform is known to enforce it; the local host "
        "always does.",
    )


def check_approvers(raw: Mapping[str, str], defaults: Mapping[str, str]) -> None:
    audiences = _audiences("MLOPS_TOKEN_AUDIENCES", raw.get("MLOPS_TOKEN_AUDIENCES", ""))
    if raw.get("MLOPS_TOKEN_TENANT_ID", "").strip() and not audiences:
        raise ConfigError(
            "MLOPS_TOKEN_TENANT_ID is set: MLOPS_TOKEN_AUDIENCES names the app registration a token must be "
            "for (its client id, api://<client id>)"
        )
