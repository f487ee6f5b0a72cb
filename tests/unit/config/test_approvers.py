"""The approvers' settings: a tenant by its id, with the audiences its tokens must be for."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings

TENANT = "72F988BF-86F1-41AF-91AB-2D7CD011DB47"


def test_by_default_no_token_is_accepted_and_the_platform_header_is_not_believed() -> None:
    approvers = Settings.from_env({}).approvers
    assert (approvers.tenant_id, approvers.audiences, approvers.trust_platform_principal) == ("", (), False)
    assert approvers.approver_role == "MLOps.Approver" and approvers.retrain_role == ""


def test_a_tenant_and_its_audiences() -> None:
    approvers = Settings.from_env(
        {"MLOPS_TOKEN_TENANT_ID": f" {TENANT} ", "MLOPS_TOKEN_AUDIENCES": "api://app, app-id,,api://app"}
    ).approvers
    assert approvers.tenant_id == TENANT.lower()  # as issuers spell it
    assert approvers.audiences == ("api://app", "app-id")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLOPS_TOKEN_TENANT_ID": TENANT}, "MLOPS_TOKEN_AUDIENCES names the app registration"),
        (
            {"MLOPS_TOKEN_TENANT_ID": "contoso.onmicrosoft.com", "MLOPS_TOKEN_AUDIENCES": "a"},
            "tenant's id (a GUID)",
        ),
        ({"MLOPS_TOKEN_TENANT_ID": "common", "MLOPS_TOKEN_AUDIENCES": "a"}, "tenant's id (a GUID)"),
        ({"MLOPS_TRUST_PLATFORM_PRINCIPAL": "maybe"}, "MLOPS_TRUST_PLATFORM_PRINCIPAL must be true or false"),
    ],
)
def test_a_setting_that_would_match_no_token_is_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)
