"""Typed settings, read once from the environment (see `shared.config.settings`)."""

from shared.config.settings import (
    AZURITE_CONNECTION_STRING,
    SETTINGS,
    TASK_DEFAULTS,
    AzureSettings,
    ConfigError,
    Containers,
    Settings,
    Topics,
    TrainingSettings,
    azurite_connection_string,
)

__all__ = [
    "AZURITE_CONNECTION_STRING",
    "SETTINGS",
    "TASK_DEFAULTS",
    "AzureSettings",
    "ConfigError",
    "Containers",
    "Settings",
    "Topics",
    "TrainingSettings",
    "azurite_connection_string",
]
