"""The azure backend's settings: where its Azure ML work happens. Present only when MLOPS_BACKEND=azure, and
checked all at once, so that one error names everything a deployment still lacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from shared.config.declare import STRIPPED, ConfigError, choice, declared, integer, setting
from shared.domain.endpoint_rules import name_problem

_REQUIRED = {
    "MLOPS_AZURE_SUBSCRIPTION_ID": "subscription of the Azure ML workspace",
    "MLOPS_AZURE_RESOURCE_GROUP": "resource group of the workspace",
    "MLOPS_AZURE_WORKSPACE": "workspace name",
    "MLOPS_AZURE_COMPUTE": "compute cluster for training jobs",
    "MLOPS_AZURE_DATASTORE": "workspace datastore of the datasets container",
    "MLOPS_AZURE_INFERENCE_DATASTORE": "workspace datastore of the inference container",
    "MLOPS_STORAGE_ACCOUNT_URL": "https://<account>.blob.core.windows.net",
    "MLOPS_EVENTS_ENDPOINT": "https://<topic>.<region>-1.eventgrid.azure.net/api/events",
}
# Left at their local placeholders, these would make the app reject every event the real resources send.
_TOPICS = {
    "MLOPS_STORAGE_TOPIC": "resource id of the storage account",
    "MLOPS_WORKSPACE_TOPIC": "resource id of the workspace",
    "MLOPS_CUSTOM_TOPIC": "resource id of the custom topic",
}


def workspace_id(subscription_id: str, resource_group: str, workspace: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{workspace}"
    )


def _endpoint_or_model(endpoint: str, parsed: Mapping[str, object]) -> str:
    return endpoint or str(parsed["MLOPS_MODEL_NAME"]).strip()


# Each cloud's Azure Resource Manager host (Bicep's `environment().resourceManager`, Azure ML's cloud names).
CLOUDS = {
    "azurecloud": ("AzureCloud", "https://management.azure.com"),
    "azurechinacloud": ("AzureChinaCloud", "https://management.chinacloudapi.cn"),
    "azureusgovernment": ("AzureUSGovernment", "https://management.usgovcloudapi.net"),
}


@dataclass(frozen=True)
class AzureSettings:
    """Where the azure backend's Azure ML work happens; present only when MLOPS_BACKEND=azure."""

    title: ClassVar[str] = "Azure ML (`MLOPS_BACKEND=azure` only; docs/azure.md maps each to its resource)"

    subscription_id: str = setting(
        "MLOPS_AZURE_SUBSCRIPTION_ID", "", STRIPPED, "Subscription of the Azure ML workspace (azure backend)."
    )
    resource_group: str = setting(
        "MLOPS_AZURE_RESOURCE_GROUP",
        "",
        STRIPPED,
        "Resource group of the Azure ML workspace (azure backend).",
    )
    workspace: str = setting(
        "MLOPS_AZURE_WORKSPACE", "", STRIPPED, "Name of the Azure ML workspace (azure backend)."
    )
    client_id: str = setting(
        "MLOPS_AZURE_CLIENT_ID",
        "",
        STRIPPED,
        "Client id of the user-assigned managed identity; empty: DefaultAzureCredential's own choice.",
    )
    compute: str = setting(
        "MLOPS_AZURE_COMPUTE", "", STRIPPED, "Compute cluster that runs the training jobs (azure backend)."
    )
    experiment: str = setting(
        "MLOPS_AZURE_EXPERIMENT",
        "mlops",
        STRIPPED,
        "Experiment the training jobs are grouped under; the run routes of `infra/routing.json` deliver only "
        "its runs' events (the local jobs announce it too).",
    )
    environment: str = setting(
        "MLOPS_AZURE_ENVIRONMENT",
        "mlops-training",
        STRIPPED,
        "Training environment: a name (registered from `shared/training/requirements.txt`, versioned by "
        "content) or an existing `name:version` / `name@latest`.",
    )
    environment_image: str = setting(
        "MLOPS_AZURE_ENVIRONMENT_IMAGE",
        "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
        STRIPPED,
        "Base image of the environment registered from the training requirements.",
    )
    datastore: str = setting(
        "MLOPS_AZURE_DATASTORE",
        "",
        STRIPPED,
        "Workspace datastore of the datasets container (`MLOPS_CONTAINER_DATASETS`): job inputs and outputs.",
    )
    inference_datastore: str = setting(
        "MLOPS_AZURE_INFERENCE_DATASTORE",
        "",
        STRIPPED,
        "Workspace datastore of the inference container (`MLOPS_CONTAINER_INFERENCE`): every deployment's data "
        "collector writes `model_inputs` and `model_outputs` there, where the drift and quality checks read.",
    )
    endpoint: str = setting(
        "MLOPS_AZURE_ENDPOINT",
        "",
        STRIPPED,
        "Managed online endpoint that serves the model; empty: `MLOPS_MODEL_NAME`.",
        resolve=_endpoint_or_model,
    )
    instance_type: str = setting(
        "MLOPS_AZURE_INSTANCE_TYPE", "Standard_DS3_v2", STRIPPED, "VM size of each online deployment."
    )
    instance_count: int = setting(
        "MLOPS_AZURE_INSTANCE_COUNT", "1", integer(1), "Instances of each online deployment."
    )

    cloud: str = setting(
        "MLOPS_AZURE_CLOUD",
        "AzureCloud",
        choice(*CLOUDS),  # any case: Bicep's environment().name says `AzureCloud`
        "The Azure cloud the resources are in: which Resource Manager the metrics queries and Azure ML go to.",
    )

    @property
    def arm_endpoint(self) -> str:
        """The cloud's Azure Resource Manager, as `environment().resourceManager` names it (no trailing slash)."""
        return CLOUDS[self.cloud][1]

    @property
    def cloud_name(self) -> str:
        """The cloud as Azure ML names it (`MLClient(cloud=...)`)."""
        return CLOUDS[self.cloud][0]

    @property
    def workspace_id(self) -> str:
        return workspace_id(self.subscription_id, self.resource_group, self.workspace)


def experiment_name(values: Mapping[str, str]) -> str:
    """MLOPS_AZURE_EXPERIMENT whatever the backend (`values`: the environment, or `settings.raw`). The routing
    table's run routes filter on it in Azure and locally, and the local jobs announce it as Azure ML's do, so
    it is read even where `settings.azure` is None."""
    [declaration] = [s for s in declared(AzureSettings) if s.name == "MLOPS_AZURE_EXPERIMENT"]
    name = declaration.parse(declaration.name, values.get(declaration.name, "") or declaration.default)
    if not name:
        raise ConfigError("MLOPS_AZURE_EXPERIMENT is blank: the run routes would deliver no run's events")
    return name


def check_azure(raw: Mapping[str, str], defaults: Mapping[str, str]) -> None:
    """The azure backend's settings, all checked at once: one error names everything missing or wrong."""
    value = {name: raw[name].strip() for name in raw}
    missing = [f"{name} ({meaning})" for name, meaning in _REQUIRED.items() if not value[name]]
    missing += [
        f"{name} ({meaning}; it is still the local placeholder)"
        for name, meaning in _TOPICS.items()
        if value[name] == defaults[name]
    ]
    invalid = [
        f"{name} must be an https:// URL, not {value[name]!r}"
        for name in ("MLOPS_STORAGE_ACCOUNT_URL", "MLOPS_EVENTS_ENDPOINT")
        if value[name] and not value[name].lower().startswith("https://")
    ]
    endpoint = value["MLOPS_AZURE_ENDPOINT"] or value["MLOPS_MODEL_NAME"]
    # Azure's rule for endpoint names (the name is also part of the endpoint's public DNS name).
    problem = name_problem("endpoint", endpoint)
    if problem is not None:
        invalid.append(f"MLOPS_AZURE_ENDPOINT (or MLOPS_MODEL_NAME) is not a valid endpoint name: {problem}")
    count = value["MLOPS_AZURE_INSTANCE_COUNT"]
    if not count.isdigit() or int(count) < 1:
        invalid.append(f"MLOPS_AZURE_INSTANCE_COUNT must be a whole number of at least 1, not {count!r}")
    workspace_topic = value["MLOPS_WORKSPACE_TOPIC"]
    subscription, group, workspace = (
        value[name]
        for name in ("MLOPS_AZURE_SUBSCRIPTION_ID", "MLOPS_AZURE_RESOURCE_GROUP", "MLOPS_AZURE_WORKSPACE")
    )
    expected = workspace_id(subscription, group, workspace)
    if (
        subscription
        and group
        and workspace
        and workspace_topic != defaults["MLOPS_WORKSPACE_TOPIC"]
        and workspace_topic.lower().rstrip("/") != expected.lower()
    ):
        invalid.append(
            f"MLOPS_WORKSPACE_TOPIC {workspace_topic!r} is not the workspace the jobs run in "
            f"({expected}): its run and model events would all be rejected"
        )
    if missing or invalid:
        parts = [f"it needs {', '.join(missing)}"] if missing else []
        parts += invalid
        raise ConfigError("MLOPS_BACKEND=azure: " + "; ".join(parts))
