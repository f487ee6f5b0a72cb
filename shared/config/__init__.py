"""Typed settings, read once from the environment: every `MLOPS_*` setting is declared once (`settings`,
`resources`, `azure`, `quality`), and the list of them, the parsing and the README's tables are derived
(`declare`).

`python -m shared.config --markdown` prints the README's configuration reference.
"""

from shared.config.approvers import ApproverSettings
from shared.config.azure import AzureSettings, experiment_name
from shared.config.declare import ConfigError, Setting, declared
from shared.config.quality import QualitySettings
from shared.config.resources import (
    AZURITE_CONNECTION_STRING,
    Containers,
    EventsSettings,
    LocalSettings,
    StorageSettings,
    Topics,
    azurite_connection_string,
)
from shared.config.settings import (
    SETTINGS,
    TASK_DEFAULTS,
    DataSettings,
    DriftSettings,
    GateSettings,
    ReleaseSettings,
    RunSettings,
    Schedules,
    Settings,
    TrainingSettings,
    WorkSettings,
)
from shared.config.training_code import TrainingCodeSettings

__all__ = [
    "AZURITE_CONNECTION_STRING",
    "SETTINGS",
    "TASK_DEFAULTS",
    "ApproverSettings",
    "AzureSettings",
    "ConfigError",
    "Containers",
    "DataSettings",
    "DriftSettings",
    "EventsSettings",
    "GateSettings",
    "LocalSettings",
    "QualitySettings",
    "ReleaseSettings",
    "RunSettings",
    "Schedules",
    "Setting",
    "Settings",
    "StorageSettings",
    "Topics",
    "TrainingCodeSettings",
    "TrainingSettings",
    "WorkSettings",
    "azurite_connection_string",
    "declared",
    "experiment_name",
]
