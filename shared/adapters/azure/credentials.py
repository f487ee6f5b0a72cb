"""The one Azure credential the azure backend uses for every service: managed identity in Azure, no keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


def default_credential(client_id: str = "") -> TokenCredential:
    """`DefaultAzureCredential`, pinned to the user-assigned identity `client_id` when one is given.

    In the Function App that is its managed identity; on a developer's machine the same chain falls back to
    the Azure CLI / VS Code login, so the azure backend can be tried from a laptop without secrets.
    """
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id or None)
