"""Typed settings, read once from the environment (app settings in Azure, `local.settings.json` / env locally).

Every setting is named `MLOPS_*`; `SETTINGS` below is the single list of them, with defaults and help, and the
README's configuration table is generated from it. Invalid values fail loudly with the setting's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.domain.validation import Schema

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


class ConfigError(ValueError):
    """A setting is missing or has a value we cannot use."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("MLOPS_BACKEND", "local", "`local` (Azurite, MLflow on SQLite, local endpoint) or `azure`."),
    Setting("MLOPS_HOME", ".mlops", "Local working folder: MLflow store, run folders, endpoint state, logs."),
    Setting(
        "MLOPS_STORAGE_CONNECTION_STRING", AZURITE_CONNECTION_STRING, "Blob storage for the local backend."
    ),
    Setting(
        "MLOPS_STORAGE_ACCOUNT_URL", "", "Blob storage account URL for the azure backend (managed identity)."
    ),
    Setting(
        "MLOPS_STORAGE_TOPIC",
        f"{LOCAL_SUBSCRIPTION}/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "Resource id of the storage account; BlobCreated events from any other topic are rejected.",
    ),
    Setting(
        "MLOPS_WORKSPACE_TOPIC",
        f"{LOCAL_SUBSCRIPTION}/Microsoft.MachineLearningServices/workspaces/mlops-local",
        "Resource id of the Azure ML workspace; run and model events from any other topic are rejected.",
    ),
    Setting(
        "MLOPS_CUSTOM_TOPIC",
        f"{LOCAL_SUBSCRIPTION}/Microsoft.EventGrid/topics/mlops-local",
        "Resource id of the custom topic carrying `MLOps.*` events.",
    ),
    Setting(
        "MLOPS_EVENTS_ENDPOINT",
        "",
        "Endpoint of the custom topic for `MLOps.*` events; empty: the local host's topic ingress.",
    ),
    Setting("MLOPS_EVENTS_KEY", "local-topic-key", "Access key of the custom topic (local backend only)."),
    # The azure backend's Azure ML workspace and what runs in it (docs/azure.md maps each to the resource).
    Setting("MLOPS_AZURE_SUBSCRIPTION_ID", "", "Subscription of the Azure ML workspace (azure backend)."),
    Setting("MLOPS_AZURE_RESOURCE_GROUP", "", "Resource group of the Azure ML workspace (azure backend)."),
    Setting("MLOPS_AZURE_WORKSPACE", "", "Name of the Azure ML workspace (azure backend)."),
    Setting(
        "MLOPS_AZURE_CLIENT_ID",
        "",
        "Client id of the user-assigned managed identity; empty: DefaultAzureCredential's own choice.",
    ),
    Setting("MLOPS_AZURE_COMPUTE", "", "Compute cluster that runs the training jobs (azure backend)."),
    Setting("MLOPS_AZURE_EXPERIMENT", "mlops", "Experiment the training jobs are grouped under."),
    Setting(
        "MLOPS_AZURE_ENVIRONMENT",
        "mlops-training",
        "Training environment: a name (registered from `shared/training/requirements.txt`, versioned by "
        "content) or an existing `name:version` / `name@latest`.",
    ),
    Setting(
        "MLOPS_AZURE_ENVIRONMENT_IMAGE",
        "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
        "Base image of the environment registered from the training requirements.",
    ),
    Setting(
        "MLOPS_AZURE_DATASTORE",
        "",
        "Workspace datastore of the datasets container (`MLOPS_CONTAINER_DATASETS`): job inputs and outputs.",
    ),
    Setting(
        "MLOPS_AZURE_ENDPOINT",
        "",
        "Managed online endpoint that serves the model; empty: `MLOPS_MODEL_NAME`.",
    ),
    Setting("MLOPS_AZURE_INSTANCE_TYPE", "Standard_DS3_v2", "VM size of each online deployment."),
    Setting("MLOPS_AZURE_INSTANCE_COUNT", "1", "Instances of each online deployment."),
    Setting("MLOPS_HOST_URL", "http://127.0.0.1:7071", "Where the local host listens."),
    Setting("MLOPS_ENDPOINT_URL", "http://127.0.0.1:7072", "Where the local scoring endpoint listens."),
    Setting("MLOPS_AZURITE_PORT", "10000", "Port of the Azurite that `mlops up` / `mlops demo` start."),
    Setting("MLOPS_CONTAINER_LANDING", "landing", "Container where new data lands."),
    Setting("MLOPS_CONTAINER_QUARANTINE", "quarantine", "Rejected files, each with a `.reason.json`."),
    Setting(
        "MLOPS_CONTAINER_DATASETS", "datasets", "Accepted files (by content hash) and dataset manifests."
    ),
    Setting("MLOPS_CONTAINER_INFERENCE", "inference", "Production inputs logged for drift checks."),
    Setting("MLOPS_CONTAINER_REPORTS", "reports", "Drift reports (HTML and JSON)."),
    Setting(
        "MLOPS_CONTAINER_STATE",
        "state",
        "Persisted state machines: files, training requests, runs, releases.",
    ),
    Setting("MLOPS_CONTAINER_AUDIT", "audit", "The hash-chained audit log."),
    Setting("MLOPS_CONTAINER_DEADLETTER", "deadletter", "Events that exhausted their delivery attempts."),
    Setting("MLOPS_MODEL_NAME", "mlops-model", "Name of the model in the registry and of the endpoint."),
    Setting("MLOPS_TASK", "regression", "`regression`, `binary` or `multiclass`."),
    Setting("MLOPS_TARGET_COLUMN", "target", "Column holding the label."),
    Setting(
        "MLOPS_FEATURE_COLUMNS",
        "",
        "Comma-separated feature columns; empty means every column but the target.",
    ),
    Setting(
        "MLOPS_PRIMARY_METRIC", "", "Metric the gate compares; empty means rmse / roc_auc / f1_macro by task."
    ),
    Setting("MLOPS_ESTIMATOR", "", "Dotted path of a scikit-learn estimator; empty means a default by task."),
    Setting("MLOPS_ESTIMATOR_PARAMS", "{}", "JSON object of estimator parameters."),
    Setting(
        "MLOPS_ABSOLUTE_GATES",
        "",
        "Comma-separated floors/ceilings like `r2>=0.1,rmse<=70`; empty: default by task.",
    ),
    Setting(
        "MLOPS_MIN_IMPROVEMENT",
        "0.0",
        "Minimum relative improvement of the primary metric over the champion.",
    ),
    Setting("MLOPS_HOLDOUT_FRACTION", "0.2", "Share of rows (by row hash) kept out of every training set."),
    Setting(
        "MLOPS_KEY_COLUMNS",
        "",
        "Comma-separated columns that identify a row for the holdout hash; empty: the whole row.",
    ),
    Setting(
        "MLOPS_BOOTSTRAP_RESAMPLES",
        "1000",
        "Paired bootstrap resamples of the holdout for the primary metric's difference (100-100000).",
    ),
    Setting(
        "MLOPS_CONFIDENCE_LEVEL",
        "0.95",
        "Level of the bootstrap interval, and at which a challenger's improvement must be significant.",
    ),
    Setting(
        "MLOPS_REQUIRE_SIGNIFICANCE",
        "true",
        "Reject a challenger whose improvement's interval does not exclude zero.",
    ),
    Setting(
        "MLOPS_SECONDARY_TOLERANCE",
        "0.05",
        "Largest relative worsening allowed on any non-primary metric vs the champion; `off` to not gate.",
    ),
    Setting(
        "MLOPS_SCHEMA",
        "",
        'Declared data schema, JSON like `{"columns": {"age": {"type": "number", "nullable": false, '
        '"min": 0}, "city": {"type": "category", "categories": ["Oslo"]}}}`; empty: learned from the '
        "first accepted file and then frozen.",
    ),
    Setting("MLOPS_SEED", "42", "Seed for training and evaluation."),
    Setting("MLOPS_MIN_ROWS", "10", "Files with fewer rows are quarantined."),
    Setting("MLOPS_MAX_FILE_BYTES", str(100 * 1024 * 1024), "Larger files are quarantined."),
    Setting("MLOPS_QUIET_PERIOD_SECONDS", "60", "Files landing within this period are trained on together."),
    Setting(
        "MLOPS_MAX_WAIT_SECONDS",
        "900",
        "A training request is started after this long even if files keep landing.",
    ),
    Setting("MLOPS_RUN_TIMEOUT_SECONDS", "3600", "A run without a result after this long is marked failed."),
    Setting("MLOPS_RECONCILE_SCHEDULE", "0 * * * * *", "NCRONTAB of the `reconcile` timer."),
    Setting("MLOPS_RETRAIN_SCHEDULE", "0 0 3 * * 0", "NCRONTAB of the `scheduled_retrain` timer."),
    Setting("MLOPS_DRIFT_SCHEDULE", "0 0 2 * * *", "NCRONTAB of the `drift_check` timer."),
    Setting(
        "MLOPS_DRIFT_SHARE",
        "0.5",
        "Share of drifted columns that makes the dataset drifted (Evidently's default).",
    ),
    Setting("MLOPS_DRIFT_WINDOW_ROWS", "10000", "Most recent inference rows compared with the reference."),
    Setting(
        "MLOPS_DRIFT_WINDOW_HOURS",
        "0",
        "If above 0: the inference files written in the last this many hours are the current data, "
        "instead of the last `MLOPS_DRIFT_WINDOW_ROWS` rows.",
    ),
    Setting(
        "MLOPS_DRIFT_SAMPLE_ROWS",
        "5000",
        "Rows of each data set the drift check keeps in memory for the report's charts; verdicts use every row.",
    ),
    Setting(
        "MLOPS_DRIFT_CHUNK_ROWS",
        "100000",
        "Rows the drift check parses at a time; its memory grows with this and the sample, not with the data.",
    ),
    Setting(
        "MLOPS_DRIFT_COOLDOWN_SECONDS",
        "604800",
        "After drift asked to retrain a model version, more drift events for it ask again only after this long.",
    ),
    Setting(
        "MLOPS_DRIFT_PREDICTION_COLUMN",
        "prediction",
        "Column of logged predictions in inference files; checked for drift against the champion's "
        "predictions on a sample of its training data.",
    ),
    Setting("MLOPS_REQUIRE_APPROVAL", "false", "Releases wait in `awaiting_approval` before production."),
    Setting("MLOPS_SMOKE_TEST_ROWS", "20", "Rows sent to a new deployment by the smoke test."),
    Setting(
        "MLOPS_SMOKE_TOLERANCE", "1e-6", "Largest relative difference between served and offline predictions."
    ),
    Setting(
        "MLOPS_LATENCY_SLO_MS", "500", "p95 latency a deployment must meet in the smoke test and the canary."
    ),
    Setting(
        "MLOPS_CANARY_PERCENT", "10", "Share of live traffic a new deployment gets during its bake period."
    ),
    Setting(
        "MLOPS_CANARY_SECONDS", "300", "Bake period of the canary; 0 promotes straight after the smoke test."
    ),
    Setting("MLOPS_CANARY_MAX_ERROR_RATE", "0.01", "A canary with a higher live error rate is rolled back."),
    Setting("MLOPS_APPROVAL_TIMEOUT_SECONDS", "86400", "A release not approved within this time expires."),
    Setting(
        "MLOPS_KEEP_DEPLOYMENTS",
        "2",
        "Deployments kept after a promotion (production and the rollback target).",
    ),
    Setting(
        "MLOPS_FUNCTION_KEY",
        "local-function-key",
        "Local host only: the function key HTTP functions require.",
    ),
    Setting("MLOPS_LOCAL_APPROVER", "", "Local only: the approver identity when a request names none."),
    Setting(
        "MLOPS_LOCAL_RETRY_SECONDS", "2,5,15,60", "Local host: delays between delivery attempts of an event."
    ),
)

_DEFAULTS = {s.name: s.default for s in SETTINGS}

TASK_DEFAULTS: dict[str, dict[str, str]] = {
    "regression": {
        "primary_metric": "rmse",
        "estimator": "sklearn.linear_model.Ridge",
        "absolute_gates": "r2>=0.1",
    },
    "binary": {
        "primary_metric": "roc_auc",
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "absolute_gates": "roc_auc>=0.6",
    },
    "multiclass": {
        "primary_metric": "f1_macro",
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "absolute_gates": "f1_macro>=0.3",
    },
}


@dataclass(frozen=True)
class Containers:
    landing: str
    quarantine: str
    datasets: str
    inference: str
    reports: str
    state: str
    audit: str
    deadletter: str

    def all(self) -> list[str]:
        return list(vars(self).values())


@dataclass(frozen=True)
class AzureSettings:
    """Where the azure backend's Azure ML work happens; present only when MLOPS_BACKEND=azure."""

    subscription_id: str
    resource_group: str
    workspace: str
    client_id: str
    compute: str
    experiment: str
    environment: str
    environment_image: str
    datastore: str
    endpoint: str
    instance_type: str
    instance_count: int

    @property
    def workspace_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace}"
        )


@dataclass(frozen=True)
class Topics:
    storage: str
    workspace: str
    custom: str


@dataclass(frozen=True)
class TrainingSettings:
    task: str
    target: str
    features: tuple[str, ...]
    primary_metric: str
    estimator: str
    estimator_params: dict
    holdout_fraction: float
    seed: int
    key_columns: tuple[str, ...] = ()
    bootstrap_resamples: int = 1000
    confidence_level: float = 0.95

    def as_job_config(self) -> dict:
        """The settings a training job receives (as `config.json`), in plain JSON types."""
        return {
            "task": self.task,
            "target": self.target,
            "features": list(self.features) or None,
            "primary_metric": self.primary_metric,
            "estimator": self.estimator,
            "estimator_params": self.estimator_params,
            "holdout_fraction": self.holdout_fraction,
            "seed": self.seed,
            "key_columns": list(self.key_columns) or None,
            "bootstrap_resamples": self.bootstrap_resamples,
            "confidence_level": self.confidence_level,
        }


@dataclass(frozen=True)
class Settings:
    backend: str
    home: Path
    storage_connection_string: str
    storage_account_url: str
    topics: Topics
    events_endpoint: str
    events_key: str
    host_url: str
    azurite_port: int
    endpoint_url: str
    containers: Containers
    model_name: str
    training: TrainingSettings
    absolute_gates: str
    min_improvement: float
    min_rows: int
    max_file_bytes: int
    quiet_period_seconds: float
    max_wait_seconds: float
    run_timeout_seconds: float
    schedules: dict[str, str]
    drift_share: float
    drift_window_rows: int
    require_approval: bool
    smoke_test_rows: int
    smoke_tolerance: float
    latency_slo_ms: float
    canary_percent: int
    canary_seconds: float
    canary_max_error_rate: float
    approval_timeout_seconds: float
    keep_deployments: int
    function_key: str
    local_approver: str
    local_retry_seconds: tuple[float, ...]
    raw: dict[str, str] = field(repr=False, default_factory=dict)
    drift_window_hours: float = 0.0
    drift_sample_rows: int = 5000
    drift_chunk_rows: int = 100_000
    drift_cooldown_seconds: float = 604800.0
    drift_prediction_column: str = "prediction"
    require_significance: bool = True
    secondary_tolerance: float | None = 0.05
    schema: Schema | None = None
    azure: AzureSettings | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        raw = {name: source.get(name, "") or default for name, default in _DEFAULTS.items()}
        return _parse(raw)


def _parse(raw: dict[str, str]) -> Settings:
    backend = raw["MLOPS_BACKEND"].lower()
    if backend not in ("local", "azure"):
        raise ConfigError(f"MLOPS_BACKEND must be 'local' or 'azure', not {raw['MLOPS_BACKEND']!r}")
    task = raw["MLOPS_TASK"].lower()
    if task not in TASK_DEFAULTS:
        raise ConfigError(f"MLOPS_TASK must be one of {sorted(TASK_DEFAULTS)}, not {raw['MLOPS_TASK']!r}")
    defaults = TASK_DEFAULTS[task]
    azure = _azure(raw) if backend == "azure" else None
    training = TrainingSettings(
        task=task,
        target=raw["MLOPS_TARGET_COLUMN"],
        features=tuple(c.strip() for c in raw["MLOPS_FEATURE_COLUMNS"].split(",") if c.strip()),
        primary_metric=raw["MLOPS_PRIMARY_METRIC"] or defaults["primary_metric"],
        estimator=raw["MLOPS_ESTIMATOR"] or defaults["estimator"],
        estimator_params=_json_object(raw, "MLOPS_ESTIMATOR_PARAMS"),
        holdout_fraction=_number(raw, "MLOPS_HOLDOUT_FRACTION", float, low=0.01, high=0.9),
        seed=_number(raw, "MLOPS_SEED", int),
        key_columns=tuple(c.strip() for c in raw["MLOPS_KEY_COLUMNS"].split(",") if c.strip()),
        bootstrap_resamples=_number(raw, "MLOPS_BOOTSTRAP_RESAMPLES", int, low=100, high=100_000),
        confidence_level=_number(raw, "MLOPS_CONFIDENCE_LEVEL", float, low=0.5, high=0.999),
    )
    return Settings(
        backend=backend,
        home=Path(raw["MLOPS_HOME"]).resolve(),
        storage_connection_string=raw["MLOPS_STORAGE_CONNECTION_STRING"],
        storage_account_url=raw["MLOPS_STORAGE_ACCOUNT_URL"],
        topics=Topics(
            storage=raw["MLOPS_STORAGE_TOPIC"],
            workspace=raw["MLOPS_WORKSPACE_TOPIC"],
            custom=raw["MLOPS_CUSTOM_TOPIC"],
        ),
        events_endpoint=raw["MLOPS_EVENTS_ENDPOINT"]
        or f"{raw['MLOPS_HOST_URL'].rstrip('/')}/runtime/topics/mlops/api/events",
        events_key=raw["MLOPS_EVENTS_KEY"],
        host_url=raw["MLOPS_HOST_URL"].rstrip("/"),
        azurite_port=_number(raw, "MLOPS_AZURITE_PORT", int, low=1, high=65535),
        endpoint_url=raw["MLOPS_ENDPOINT_URL"].rstrip("/"),
        containers=Containers(
            landing=raw["MLOPS_CONTAINER_LANDING"],
            quarantine=raw["MLOPS_CONTAINER_QUARANTINE"],
            datasets=raw["MLOPS_CONTAINER_DATASETS"],
            inference=raw["MLOPS_CONTAINER_INFERENCE"],
            reports=raw["MLOPS_CONTAINER_REPORTS"],
            state=raw["MLOPS_CONTAINER_STATE"],
            audit=raw["MLOPS_CONTAINER_AUDIT"],
            deadletter=raw["MLOPS_CONTAINER_DEADLETTER"],
        ),
        model_name=raw["MLOPS_MODEL_NAME"],
        training=training,
        absolute_gates=raw["MLOPS_ABSOLUTE_GATES"] or defaults["absolute_gates"],
        min_improvement=_number(raw, "MLOPS_MIN_IMPROVEMENT", float, low=0.0),
        min_rows=_number(raw, "MLOPS_MIN_ROWS", int, low=1),
        max_file_bytes=_number(raw, "MLOPS_MAX_FILE_BYTES", int, low=1),
        quiet_period_seconds=_number(raw, "MLOPS_QUIET_PERIOD_SECONDS", float, low=0.0),
        max_wait_seconds=_number(raw, "MLOPS_MAX_WAIT_SECONDS", float, low=0.0),
        run_timeout_seconds=_number(raw, "MLOPS_RUN_TIMEOUT_SECONDS", float, low=1.0),
        schedules={
            "reconcile": raw["MLOPS_RECONCILE_SCHEDULE"],
            "scheduled_retrain": raw["MLOPS_RETRAIN_SCHEDULE"],
            "drift_check": raw["MLOPS_DRIFT_SCHEDULE"],
        },
        drift_share=_number(raw, "MLOPS_DRIFT_SHARE", float, low=0.0, high=1.0),
        drift_window_rows=_number(raw, "MLOPS_DRIFT_WINDOW_ROWS", int, low=1),
        require_approval=_boolean(raw, "MLOPS_REQUIRE_APPROVAL"),
        smoke_test_rows=_number(raw, "MLOPS_SMOKE_TEST_ROWS", int, low=1),
        smoke_tolerance=_number(raw, "MLOPS_SMOKE_TOLERANCE", float, low=0.0),
        latency_slo_ms=_number(raw, "MLOPS_LATENCY_SLO_MS", float, low=1.0),
        canary_percent=_number(raw, "MLOPS_CANARY_PERCENT", int, low=1, high=50),
        canary_seconds=_number(raw, "MLOPS_CANARY_SECONDS", float, low=0.0),
        canary_max_error_rate=_number(raw, "MLOPS_CANARY_MAX_ERROR_RATE", float, low=0.0, high=1.0),
        approval_timeout_seconds=_number(raw, "MLOPS_APPROVAL_TIMEOUT_SECONDS", float, low=1.0),
        keep_deployments=_number(raw, "MLOPS_KEEP_DEPLOYMENTS", int, low=1),
        function_key=raw["MLOPS_FUNCTION_KEY"],
        local_approver=raw["MLOPS_LOCAL_APPROVER"],
        local_retry_seconds=tuple(
            _number({"MLOPS_LOCAL_RETRY_SECONDS": part}, "MLOPS_LOCAL_RETRY_SECONDS", float, low=0.0)
            for part in raw["MLOPS_LOCAL_RETRY_SECONDS"].split(",")
        ),
        raw=raw,
        drift_window_hours=_number(raw, "MLOPS_DRIFT_WINDOW_HOURS", float, low=0.0),
        drift_sample_rows=_number(raw, "MLOPS_DRIFT_SAMPLE_ROWS", int, low=0, high=1_000_000),
        drift_chunk_rows=_number(raw, "MLOPS_DRIFT_CHUNK_ROWS", int, low=100),
        drift_cooldown_seconds=_number(raw, "MLOPS_DRIFT_COOLDOWN_SECONDS", float, low=0.0),
        drift_prediction_column=raw["MLOPS_DRIFT_PREDICTION_COLUMN"].strip(),
        require_significance=_boolean(raw, "MLOPS_REQUIRE_SIGNIFICANCE"),
        secondary_tolerance=None
        if raw["MLOPS_SECONDARY_TOLERANCE"].strip().lower() == "off"
        else _number(raw, "MLOPS_SECONDARY_TOLERANCE", float, low=0.0),
        schema=_schema(raw, training.target),
        azure=azure,
    )


_AZURE_REQUIRED = {
    "MLOPS_AZURE_SUBSCRIPTION_ID": "subscription of the Azure ML workspace",
    "MLOPS_AZURE_RESOURCE_GROUP": "resource group of the workspace",
    "MLOPS_AZURE_WORKSPACE": "workspace name",
    "MLOPS_AZURE_COMPUTE": "compute cluster for training jobs",
    "MLOPS_AZURE_DATASTORE": "workspace datastore of the datasets container",
    "MLOPS_STORAGE_ACCOUNT_URL": "https://<account>.blob.core.windows.net",
    "MLOPS_EVENTS_ENDPOINT": "https://<topic>.<region>-1.eventgrid.azure.net/api/events",
}
# Left at their local placeholders, these would make the app reject every event the real resources send.
_AZURE_TOPICS = {
    "MLOPS_STORAGE_TOPIC": "resource id of the storage account",
    "MLOPS_WORKSPACE_TOPIC": "resource id of the workspace",
    "MLOPS_CUSTOM_TOPIC": "resource id of the custom topic",
}


def _azure(raw: Mapping[str, str]) -> AzureSettings:
    """The azure backend's settings, all checked at once: one error names everything missing or wrong."""
    value = {name: raw[name].strip() for name in raw}
    missing = [f"{name} ({meaning})" for name, meaning in _AZURE_REQUIRED.items() if not value[name]]
    missing += [
        f"{name} ({meaning}; it is still the local placeholder)"
        for name, meaning in _AZURE_TOPICS.items()
        if value[name] == _DEFAULTS[name]
    ]
    invalid = [
        f"{name} must be an https:// URL, not {value[name]!r}"
        for name in ("MLOPS_STORAGE_ACCOUNT_URL", "MLOPS_EVENTS_ENDPOINT")
        if value[name] and not value[name].lower().startswith("https://")
    ]
    endpoint = value["MLOPS_AZURE_ENDPOINT"] or value["MLOPS_MODEL_NAME"]
    # Azure's rule for endpoint names (the name is also part of the endpoint's public DNS name); the rules
    # module imports nothing but `re`.
    from shared.adapters.endpoint_rules import name_problem

    problem = name_problem("endpoint", endpoint)
    if problem is not None:
        invalid.append(f"MLOPS_AZURE_ENDPOINT (or MLOPS_MODEL_NAME) is not a valid endpoint name: {problem}")
    count = value["MLOPS_AZURE_INSTANCE_COUNT"]
    if not count.isdigit() or int(count) < 1:
        invalid.append(f"MLOPS_AZURE_INSTANCE_COUNT must be a whole number of at least 1, not {count!r}")
    settings = AzureSettings(
        subscription_id=value["MLOPS_AZURE_SUBSCRIPTION_ID"],
        resource_group=value["MLOPS_AZURE_RESOURCE_GROUP"],
        workspace=value["MLOPS_AZURE_WORKSPACE"],
        client_id=value["MLOPS_AZURE_CLIENT_ID"],
        compute=value["MLOPS_AZURE_COMPUTE"],
        experiment=value["MLOPS_AZURE_EXPERIMENT"],
        environment=value["MLOPS_AZURE_ENVIRONMENT"],
        environment_image=value["MLOPS_AZURE_ENVIRONMENT_IMAGE"],
        datastore=value["MLOPS_AZURE_DATASTORE"],
        endpoint=endpoint,
        instance_type=value["MLOPS_AZURE_INSTANCE_TYPE"],
        instance_count=int(count) if count.isdigit() else 1,
    )
    workspace_topic = value["MLOPS_WORKSPACE_TOPIC"]
    workspace_known = settings.subscription_id and settings.resource_group and settings.workspace
    if (
        workspace_known
        and workspace_topic != _DEFAULTS["MLOPS_WORKSPACE_TOPIC"]
        and workspace_topic.lower().rstrip("/") != settings.workspace_id.lower()
    ):
        invalid.append(
            f"MLOPS_WORKSPACE_TOPIC {workspace_topic!r} is not the workspace the jobs run in "
            f"({settings.workspace_id}): its run and model events would all be rejected"
        )
    if missing or invalid:
        parts = [f"it needs {', '.join(missing)}"] if missing else []
        parts += invalid
        raise ConfigError("MLOPS_BACKEND=azure: " + "; ".join(parts))
    return settings


def _number(
    raw: Mapping[str, str], name: str, kind: type, low: float | None = None, high: float | None = None
):
    text = raw[name].strip()
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(
            f"{name} must be a{'n integer' if kind is int else ' number'}, not {text!r}"
        ) from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}={text} is out of range [{low}, {high}]")
    return value


def _boolean(raw: Mapping[str, str], name: str) -> bool:
    text = raw[name].strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw[name]!r}")


def _schema(raw: Mapping[str, str], target: str) -> Schema | None:
    from shared.domain.validation import Schema, SchemaError

    text = raw["MLOPS_SCHEMA"].strip()
    if not text:
        return None
    try:
        schema = Schema.from_dict(_json_object(raw, "MLOPS_SCHEMA"))
    except SchemaError as error:
        raise ConfigError(f"MLOPS_SCHEMA: {error}") from None
    if target not in schema.columns:
        raise ConfigError(f"MLOPS_SCHEMA does not declare the target column {target!r} (MLOPS_TARGET_COLUMN)")
    return schema


def _json_object(raw: Mapping[str, str], name: str) -> dict:
    import json

    try:
        value = json.loads(raw[name])
    except json.JSONDecodeError as error:
        raise ConfigError(f"{name} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object")
    return value
