"""The azure backend's settings: read once, and every problem named in one error."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings
from tests.contract.azure_stub import AZURE_SETTINGS, WORKSPACE_ID

REQUIRED = (
    "MLOPS_AZURE_SUBSCRIPTION_ID",
    "MLOPS_AZURE_RESOURCE_GROUP",
    "MLOPS_AZURE_WORKSPACE",
    "MLOPS_AZURE_COMPUTE",
    "MLOPS_AZURE_DATASTORE",
    "MLOPS_AZURE_INFERENCE_DATASTORE",
    "MLOPS_STORAGE_ACCOUNT_URL",
    "MLOPS_EVENTS_ENDPOINT",
)
TOPICS = ("MLOPS_STORAGE_TOPIC", "MLOPS_WORKSPACE_TOPIC", "MLOPS_CUSTOM_TOPIC")


def test_one_error_names_every_missing_setting() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"MLOPS_BACKEND": "azure"})
    message = str(raised.value)
    assert [name for name in (*REQUIRED, *TOPICS) if name not in message] == []
    assert "local placeholder" in message


def test_a_complete_configuration_is_read_into_azure_settings() -> None:
    azure = Settings.from_env(AZURE_SETTINGS).azure
    assert azure is not None
    assert (azure.subscription_id, azure.resource_group, azure.workspace) == (
        AZURE_SETTINGS["MLOPS_AZURE_SUBSCRIPTION_ID"],
        AZURE_SETTINGS["MLOPS_AZURE_RESOURCE_GROUP"],
        AZURE_SETTINGS["MLOPS_AZURE_WORKSPACE"],
    )
    assert azure.workspace_id == WORKSPACE_ID
    assert (azure.compute, azure.datastore, azure.endpoint) == (
        "cpu-cluster",
        "mlopsdatasets",
        "mlops-endpoint",
    )
    assert (azure.experiment, azure.environment, azure.instance_type, azure.instance_count) == (
        "mlops",
        "mlops-training",
        "Standard_DS3_v2",
        1,
    )


def test_the_endpoint_defaults_to_the_model_name() -> None:
    settings = Settings.from_env({**AZURE_SETTINGS, "MLOPS_AZURE_ENDPOINT": "", "MLOPS_MODEL_NAME": "churn"})
    assert settings.azure is not None and settings.azure.endpoint == "churn"


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("MLOPS_STORAGE_ACCOUNT_URL", "http://stmlops.blob.core.windows.net", "https://"),
        ("MLOPS_EVENTS_ENDPOINT", "http://127.0.0.1:7071/runtime/topics/mlops/api/events", "https://"),
        ("MLOPS_AZURE_INSTANCE_COUNT", "0", "at least 1"),
        ("MLOPS_AZURE_INSTANCE_COUNT", "two", "at least 1"),
        ("MLOPS_AZURE_ENDPOINT", "9-starts-with-a-digit", "not a valid endpoint name"),
        (
            "MLOPS_WORKSPACE_TOPIC",
            WORKSPACE_ID.replace("mlw-mlops", "another-workspace"),
            "not the workspace the jobs run in",
        ),
    ],
)
def test_wrong_values_are_named(name: str, value: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=name) as raised:
        Settings.from_env({**AZURE_SETTINGS, name: value})
    assert complaint in str(raised.value)


def test_missing_and_wrong_settings_are_reported_together() -> None:
    broken = {**AZURE_SETTINGS, "MLOPS_AZURE_COMPUTE": "", "MLOPS_AZURE_INSTANCE_COUNT": "-1"}
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(broken)
    assert "MLOPS_AZURE_COMPUTE" in str(raised.value) and "MLOPS_AZURE_INSTANCE_COUNT" in str(raised.value)


def test_the_workspace_topic_matches_case_insensitively() -> None:
    settings = Settings.from_env({**AZURE_SETTINGS, "MLOPS_WORKSPACE_TOPIC": WORKSPACE_ID.lower()})
    assert settings.azure is not None


def test_the_local_backend_needs_no_azure_setting() -> None:
    assert Settings.from_env({}).azure is None
