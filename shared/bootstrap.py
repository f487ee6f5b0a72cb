"""Builds the dependencies once, lazily, from configuration. Nothing here runs at import time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.audit import AuditLog
from shared.config import Settings
from shared.ports import BlobStore, Endpoints, EventPublisher, ModelRegistry, TrainingJobs
from shared.state import StateStore


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    settings: Settings
    blobs: BlobStore
    state: StateStore
    audit: AuditLog
    jobs: TrainingJobs
    registry: ModelRegistry
    endpoints: Endpoints
    publisher: EventPublisher
    clock: Callable[[], datetime] = utc_now


_lock = threading.Lock()
_deps: Deps | None = None


def deps() -> Deps:
    """The process-wide dependencies, built on first use (the first invocation, not the cold start)."""
    global _deps
    with _lock:
        if _deps is None:
            _deps = build(Settings.from_env())
        built = _deps
    from shared import faults

    fault = faults.armed.get()
    return built if fault is None else faults.wrap(built, fault)


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

    from shared.azure.events import EventGridPublisher
    from shared.azure.storage import AzureBlobStore
    from shared.local.endpoint import LocalEndpoint
    from shared.local.jobs import LocalTrainingJobs
    from shared.local.registry import MlflowRegistry

    blobs = AzureBlobStore.from_connection_string(settings.storage_connection_string)
    blobs.ensure_containers(settings.containers.all())
    publisher = EventGridPublisher.create(settings.events_endpoint, AzureKeyCredential(settings.events_key))
    return Deps(
        settings=settings,
        blobs=blobs,
        state=StateStore(blobs, settings.containers.state),
        audit=AuditLog(blobs, settings.containers.audit, clock),
        jobs=LocalTrainingJobs(settings),
        registry=MlflowRegistry(settings),
        endpoints=LocalEndpoint(settings.model_name, settings.home),
        publisher=publisher,
        clock=clock,
    )


def _build_azure(settings: Settings, clock: Callable[[], datetime]) -> Deps:
    # One credential (the app's managed identity) for every service; the MLClient, and azure.ai.ml with it,
    # only when a function first needs Azure ML. Containers and the endpoint come from the infrastructure.
    from shared.azure.credentials import default_credential
    from shared.azure.endpoints import AzureMLEndpoints
    from shared.azure.events import EventGridPublisher
    from shared.azure.jobs import AzureMLTrainingJobs
    from shared.azure.metrics import EndpointMetrics
    from shared.azure.ml_client import MLClientProvider
    from shared.azure.registry import AzureMLRegistry
    from shared.azure.storage import AzureBlobStore

    azure = settings.azure
    if azure is None:  # Settings parse it whenever MLOPS_BACKEND=azure; a hand-made Settings may not
        from shared.config import ConfigError

        raise ConfigError("MLOPS_BACKEND=azure needs the MLOPS_AZURE_* settings")
    credential = default_credential(azure.client_id)
    ml_client = MLClientProvider(azure, credential)
    blobs = AzureBlobStore.from_account_url(settings.storage_account_url, credential)
    return Deps(
        settings=settings,
        blobs=blobs,
        state=StateStore(blobs, settings.containers.state),
        audit=AuditLog(blobs, settings.containers.audit, clock),
        jobs=AzureMLTrainingJobs(ml_client, blobs, settings),
        registry=AzureMLRegistry(ml_client),
        endpoints=AzureMLEndpoints(
            ml_client,
            azure.endpoint,
            azure.instance_type,
            azure.instance_count,
            metrics=EndpointMetrics(credential, f"{azure.workspace_id}/onlineEndpoints/{azure.endpoint}"),
        ),
        publisher=EventGridPublisher.create(settings.events_endpoint, credential),
        clock=clock,
    )
