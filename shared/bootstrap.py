"""The composition root: builds the dependencies once, lazily, from configuration. Nothing runs at import time.

Only the entry points (`function_app`, `functions/`) and the local host and tools import this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from shared.config import Settings
from shared.deps import Deps, utc_now
from shared.ports import TokenVerifier, Webhooks
from shared.state.audit import AuditLog
from shared.state.store import StateStore

Interceptor = Callable[[Deps], Deps]

_lock = threading.Lock()
_deps: Deps | None = None
# Set around one invocation by whoever runs it (the local host, a test) to see or change what it uses.
_intercept: ContextVar[Interceptor | None] = ContextVar("mlops_intercept", default=None)


def deps() -> Deps:
    """The process-wide dependencies, built on first use (the first invocation, not the cold start)."""
    global _deps
    with _lock:
        if _deps is None:
            _deps = build(Settings.from_env())
        built = _deps
    interceptor = _intercept.get()
    return built if interceptor is None else interceptor(built)


@contextmanager
def intercepted(interceptor: Interceptor) -> Iterator[None]:
    """Within this block (this thread or task), `deps()` answers `interceptor(deps)`."""
    token = _intercept.set(interceptor)
    try:
        yield
    finally:
        _intercept.reset(token)


def install(built: Deps) -> None:
    """Use `built` from now on (a bench that counts what an adapter does wraps it and installs the result)."""
    global _deps
    with _lock:
        _deps = built


def reset() -> None:
    """Forget the built dependencies (tests and the local host call this after changing settings)."""
    global _deps
    with _lock:
        _deps = None


def build(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Deps:
    if settings.backend == "local":
        return _build_local(settings, clock)
    return _build_azure(settings, clock)


def _build_local(settings: Settings, clock: Callable[[], datetime]) -> Deps:
    from azure.core.credentials import AzureKeyCredential

    from shared.adapters.azure.events import EventGridPublisher
    from shared.adapters.azure.storage import AzureBlobStore
    from shared.adapters.local.drift_jobs import LocalDriftJobs
    from shared.adapters.local.endpoint import LocalEndpoint
    from shared.adapters.local.jobs import LocalTrainingJobs
    from shared.adapters.local.registry import MlflowRegistry

    blobs = AzureBlobStore.from_connection_string(settings.storage.connection_string)
    blobs.ensure_containers(settings.containers.all())
    publisher = EventGridPublisher.create(settings.events.endpoint, AzureKeyCredential(settings.events.key))
    return Deps(
        settings=settings,
        blobs=blobs,
        state=StateStore(blobs, settings.containers.state),
        audit=AuditLog(blobs, settings.containers.audit, clock),
        jobs=LocalTrainingJobs(settings),
        drift_jobs=LocalDriftJobs(settings),
        registry=MlflowRegistry(settings),
        endpoints=LocalEndpoint(settings.local.endpoint_url),
        publisher=publisher,
        webhooks=_webhooks(),
        clock=clock,
        tokens=_tokens(settings),
    )


def _build_azure(settings: Settings, clock: Callable[[], datetime]) -> Deps:
    # One credential (the app's managed identity) for every service; the MLClient, and azure.ai.ml with it,
    # only when a function first needs Azure ML. Containers and the endpoint come from the infrastructure.
    from shared.adapters.azure.credentials import default_credential
    from shared.adapters.azure.drift_jobs import AzureMLDriftJobs
    from shared.adapters.azure.endpoints import AzureMLEndpoints
    from shared.adapters.azure.events import EventGridPublisher
    from shared.adapters.azure.jobs import AzureMLTrainingJobs
    from shared.adapters.azure.metrics import EndpointMetrics
    from shared.adapters.azure.ml_client import MLClientProvider
    from shared.telemetry import configure

    # traces and logs to Application Insights, with the ids as attributes (before any handler logs)
    configure(settings.azure.client_id if settings.azure else None)
    from shared.adapters.azure.registry import AzureMLRegistry
    from shared.adapters.azure.storage import AzureBlobStore

    azure = settings.azure
    if azure is None:  # Settings parse it whenever MLOPS_BACKEND=azure; a hand-made Settings may not
        from shared.config import ConfigError

        raise ConfigError("MLOPS_BACKEND=azure needs the MLOPS_AZURE_* settings")
    credential = default_credential(azure.client_id)
    ml_client = MLClientProvider(azure, credential)
    blobs = AzureBlobStore.from_account_url(settings.storage.account_url, credential)
    return Deps(
        settings=settings,
        blobs=blobs,
        state=StateStore(blobs, settings.containers.state),
        audit=AuditLog(blobs, settings.containers.audit, clock),
        jobs=AzureMLTrainingJobs(ml_client, blobs, settings),
        drift_jobs=AzureMLDriftJobs(ml_client, blobs, settings),
        registry=AzureMLRegistry(ml_client, blobs, settings.containers.datasets),
        endpoints=AzureMLEndpoints(
            ml_client,
            azure.endpoint,
            azure.instance_type,
            azure.instance_count,
            metrics=EndpointMetrics(
                credential, f"{azure.workspace_id}/onlineEndpoints/{azure.endpoint}", arm=azure.arm_endpoint
            ),
            capture_datastore=azure.inference_datastore,
        ),
        publisher=EventGridPublisher.create(settings.events.endpoint, credential),
        webhooks=_webhooks(),
        clock=clock,
        tokens=_tokens(settings),
    )


def _webhooks() -> Webhooks:
    """The notifications' webhook calls, on either backend."""
    from shared.adapters.webhooks import RequestsWebhooks

    return RequestsWebhooks()


def _tokens(settings: Settings) -> TokenVerifier | None:
    """The verifier of approvers' bearer tokens, on either backend, when a tenant is configured."""
    approvers = settings.approvers
    if not approvers.tenant_id:
        return None
    from shared.adapters.azure.entra_tokens import EntraTokenVerifier

    return EntraTokenVerifier(approvers.tenant_id, approvers.audiences)
