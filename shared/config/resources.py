"""Where things are: blob storage, the custom topic, the Event Grid topics, the local host, the containers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from shared.config.declare import TEXT, URL, integer, numbers, setting

LOCAL_SUBSCRIPTION = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mlops-local/providers"
)
# Azurite's well-known development account (public, documented, local only).
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_connection_string(port: int = 10000) -> str:
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


AZURITE_CONNECTION_STRING = azurite_connection_string()


@dataclass(frozen=True)
class StorageSettings:
    title: ClassVar[str] = "Storage"

    connection_string: str = setting(
        "MLOPS_STORAGE_CONNECTION_STRING",
        AZURITE_CONNECTION_STRING,
        TEXT,
        "Blob storage for the local backend.",
    )
    account_url: str = setting(
        "MLOPS_STORAGE_ACCOUNT_URL",
        "",
        TEXT,
        "Blob storage account URL for the azure backend (managed identity).",
    )


def _local_ingress(endpoint: str, parsed: Mapping[str, Any]) -> str:
    return endpoint or f"{parsed['MLOPS_HOST_URL']}/runtime/topics/mlops/api/events"


@dataclass(frozen=True)
class EventsSettings:
    title: ClassVar[str] = "Events"

    endpoint: str = setting(
        "MLOPS_EVENTS_ENDPOINT",
        "",
        TEXT,
        "Endpoint of the custom topic for `MLOps.*` events; empty: the local host's topic ingress.",
        resolve=_local_ingress,
    )
    key: str = setting(
        "MLOPS_EVENTS_KEY", "local-topic-key", TEXT, "Access key of the custom topic (local backend only)."
    )


@dataclass(frozen=True)
class Topics:
    title: ClassVar[str] = "Event Grid topics"

    storage: str = setting(
        "MLOPS_STORAGE_TOPIC",
        f"{LOCAL_SUBSCRIPTION}/Microsoft.Storage/storageAccounts/devstoreaccount1",
        TEXT,
        "Resource id of the storage account; BlobCreated events from any other topic are rejected.",
    )
    workspace: str = setting(
        "MLOPS_WORKSPACE_TOPIC",
        f"{LOCAL_SUBSCRIPTION}/Microsoft.MachineLearningServices/workspaces/mlops-local",
        TEXT,
        "Resource id of the Azure ML workspace; run and model events from any other topic are rejected.",
    )
    custom: str = setting(
        "MLOPS_CUSTOM_TOPIC",
        f"{LOCAL_SUBSCRIPTION}/Microsoft.EventGrid/topics/mlops-local",
        TEXT,
        "Resource id of the custom topic carrying `MLOps.*` events.",
    )


@dataclass(frozen=True)
class LocalSettings:
    title: ClassVar[str] = "Local host"

    host_url: str = setting("MLOPS_HOST_URL", "http://127.0.0.1:7071", URL, "Where the local host listens.")
    endpoint_url: str = setting(
        "MLOPS_ENDPOINT_URL", "http://127.0.0.1:7072", URL, "Where the local scoring endpoint listens."
    )
    azurite_port: int = setting(
        "MLOPS_AZURITE_PORT",
        "10000",
        integer(1, 65535),
        "Port of the Azurite that `mlops up` / `mlops demo` start.",
    )
    function_key: str = setting(
        "MLOPS_FUNCTION_KEY",
        "local-function-key",
        TEXT,
        "Local host only: the function key HTTP functions require.",
    )
    approver: str = setting(
        "MLOPS_LOCAL_APPROVER", "", TEXT, "Local only: the approver identity when a request names none."
    )
    retry_seconds: tuple[float, ...] = setting(
        "MLOPS_LOCAL_RETRY_SECONDS",
        "2,5,15,60",
        numbers(0.0),
        "Local host: delays between delivery attempts of an event.",
    )


@dataclass(frozen=True)
class Containers:
    title: ClassVar[str] = "Blob containers"

    landing: str = setting("MLOPS_CONTAINER_LANDING", "landing", TEXT, "Container where new data lands.")
    quarantine: str = setting(
        "MLOPS_CONTAINER_QUARANTINE", "quarantine", TEXT, "Rejected files, each with a `.reason.json`."
    )
    datasets: str = setting(
        "MLOPS_CONTAINER_DATASETS",
        "datasets",
        TEXT,
        "Accepted files (by content hash) and dataset manifests.",
    )
    inference: str = setting(
        "MLOPS_CONTAINER_INFERENCE", "inference", TEXT, "Production inputs logged for drift checks."
    )
    labels: str = setting(
        "MLOPS_CONTAINER_LABELS",
        "labels",
        TEXT,
        "Late labels: files of correlation ids and true values, for the quality check.",
    )
    reports: str = setting("MLOPS_CONTAINER_REPORTS", "reports", TEXT, "Drift reports (HTML and JSON).")
    state: str = setting(
        "MLOPS_CONTAINER_STATE",
        "state",
        TEXT,
        "Persisted state machines: files, training requests, runs, releases.",
    )
    audit: str = setting("MLOPS_CONTAINER_AUDIT", "audit", TEXT, "The hash-chained audit log.")
    deadletter: str = setting(
        "MLOPS_CONTAINER_DEADLETTER", "deadletter", TEXT, "Events that exhausted their delivery attempts."
    )

    def all(self) -> list[str]:
        return list(vars(self).values())
