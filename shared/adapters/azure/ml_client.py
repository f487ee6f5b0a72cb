"""One `MLClient` for the workspace, made on first use: importing azure.ai.ml costs seconds.

Functions that never touch Azure ML (data intake, the status API) must not pay for it, so the adapters hold
this provider and call it when they first need the client, not the client itself.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shared.adapters.azure.sdk import quicken_experimental_check
from shared.config import AzureSettings

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential


class MLClientProvider:
    """Callable returning the process's one `MLClient`, built once, thread-safely, on the first call.

    `client_options` go to `MLClient` as they are (tests pass an azure-core `transport`).
    """

    def __init__(self, azure: AzureSettings, credential: TokenCredential, **client_options: Any) -> None:
        self._azure = azure
        self._credential = credential
        self._options = client_options
        self._client: MLClient | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._client is not None

    def __call__(self) -> MLClient:
        with self._lock:
            if self._client is None:
                from azure.ai.ml import MLClient

                quicken_experimental_check()
                self._client = MLClient(
                    self._credential,
                    subscription_id=self._azure.subscription_id,
                    resource_group_name=self._azure.resource_group,
                    workspace_name=self._azure.workspace,
                    # No telemetry upload from inside a function: it would add a network call per operation.
                    enable_telemetry=False,
                    show_progress=False,
                    cloud=self._azure.cloud_name,
                    **self._options,
                )
            return self._client
