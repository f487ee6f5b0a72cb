"""The settings, declared once each and grouped by concern; read once from the environment (app settings in
Azure, `local.settings.json` / env locally) by `Settings.from_env`.

Each field names its `MLOPS_*` setting, its default (as one would write it in the environment), its parser
(type and allowed values) and its help; `shared.config.declare` derives the rest. Invalid values fail loudly
with the setting's name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from shared.config.approvers import ApproverSettings, check_approvers
from shared.config.azure import AzureSettings, check_azure
from shared.config.declare import (
    BOOLEAN,
    COLUMNS,
    JSON_OBJECT,
    PATH,
    STRIPPED,
    TEXT,
    ConfigError,
    Parser,
    choice,
    declared,
    group,
    integer,
    json_object,
    load,
    number,
    number_or_off,
    raw_values,
    setting,
)
from shared.config.notify import NotifySettings
from shared.config.quality import QualitySettings
from shared.config.release import ReleaseSettings
from shared.config.resources import Containers, EventsSettings, LocalSettings, StorageSettings, Topics
from shared.config.retention import RetentionSettings
from shared.config.slices import SliceSettings, check_slices
from shared.config.ticks import TickSettings
from shared.config.training_code import TrainingCodeSettings, check_training_code

if TYPE_CHECKING:
    from shared.domain.validation import Schema

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


def _by_task(key: str) -> Callable[[str, Mapping[str, Any]], str]:
    """Empty means the task's default (TASK_DEFAULTS)."""
    return lambda value, parsed: value or TASK_DEFAULTS[parsed["MLOPS_TASK"]][key]


@dataclass(frozen=True)
class TrainingSettings:
    title: ClassVar[str] = "Training"

    task: str = setting("MLOPS_TASK", "regression", choice(*TASK_DEFAULTS), "What the model predicts.")
    target: str = setting("MLOPS_TARGET_COLUMN", "target", TEXT, "Column holding the label.")
    features: tuple[str, ...] = setting(
        "MLOPS_FEATURE_COLUMNS", "", COLUMNS, "Feature columns; empty means every column but the target."
    )
    primary_metric: str = setting(
        "MLOPS_PRIMARY_METRIC",
        "",
        TEXT,
        "Metric the gate compares; empty means rmse / roc_auc / f1_macro by task.",
        resolve=_by_task("primary_metric"),
    )
    estimator: str = setting(
        "MLOPS_ESTIMATOR",
        "",
        TEXT,
        "Dotted path of a scikit-learn estimator; empty means a default by task.",
        resolve=_by_task("estimator"),
    )
    estimator_params: dict = setting(
        "MLOPS_ESTIMATOR_PARAMS", "{}", JSON_OBJECT, "JSON object of estimator parameters."
    )
    holdout_fraction: float = setting(
        "MLOPS_HOLDOUT_FRACTION",
        "0.2",
        number(0.01, 0.9),
        "Share of rows (by row hash) kept out of every training set.",
    )
    seed: int = setting("MLOPS_SEED", "42", integer(), "Seed for training and evaluation.")
    key_columns: tuple[str, ...] = setting(
        "MLOPS_KEY_COLUMNS",
        "",
        COLUMNS,
        "Columns that identify a row for the holdout hash; empty: the whole row.",
    )
    bootstrap_resamples: int = setting(
        "MLOPS_BOOTSTRAP_RESAMPLES",
        "1000",
        integer(100, 100_000),
        "Paired bootstrap resamples of the holdout for the primary metric's difference.",
    )
    confidence_level: float = setting(
        "MLOPS_CONFIDENCE_LEVEL",
        "0.95",
        number(0.5, 0.999),
        "Level of the bootstrap interval, and at which a challenger's improvement must be significant.",
    )

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
class GateSettings:
    title: ClassVar[str] = "Gates (what a challenger must pass)"

    absolute: str = setting(
        "MLOPS_ABSOLUTE_GATES",
        "",
        TEXT,
        "Comma-separated floors/ceilings like `r2>=0.1,rmse<=70`; empty: default by task.",
        resolve=_by_task("absolute_gates"),
    )
    min_improvement: float = setting(
        "MLOPS_MIN_IMPROVEMENT",
        "0.0",
        number(0.0),
        "Minimum relative improvement of the primary metric over the champion.",
    )
    require_significance: bool = setting(
        "MLOPS_REQUIRE_SIGNIFICANCE",
        "true",
        BOOLEAN,
        "Reject a challenger whose improvement's interval does not exclude zero.",
    )
    secondary_tolerance: float | None = setting(
        "MLOPS_SECONDARY_TOLERANCE",
        "0.05",
        number_or_off(0.0),
        "Largest relative worsening allowed on any non-primary metric vs the champion; `off` to not gate.",
    )


def _schema(name: str, text: str) -> Schema | None:
    from shared.domain.validation import Schema, SchemaError

    if not text.strip():
        return None
    try:
        return Schema.from_dict(json_object(name, text))
    except SchemaError as error:
        raise ConfigError(f"{name}: {error}") from None


def _declares_target(schema: Schema | None, parsed: Mapping[str, Any]) -> Schema | None:
    target = parsed["MLOPS_TARGET_COLUMN"]
    if schema is not None and target not in schema.columns:
        raise ConfigError(f"MLOPS_SCHEMA does not declare the target column {target!r} (MLOPS_TARGET_COLUMN)")
    return schema


@dataclass(frozen=True)
class DataSettings:
    title: ClassVar[str] = "Data validation"

    schema: Schema | None = setting(
        "MLOPS_SCHEMA",
        "",
        Parser("JSON object (a schema)", _schema),
        'Declared data schema, JSON like `{"columns": {"age": {"type": "number", "nullable": false, '
        '"min": 0}, "city": {"type": "category", "categories": ["Oslo"]}}}`; empty: learned from the '
        "first accepted file and then frozen.",
        resolve=_declares_target,
    )
    min_rows: int = setting("MLOPS_MIN_ROWS", "10", integer(1), "Files with fewer rows are quarantined.")
    max_file_bytes: int = setting(
        "MLOPS_MAX_FILE_BYTES", str(100 * 1024 * 1024), integer(1), "Larger files are quarantined."
    )


@dataclass(frozen=True)
class RunSettings:
    title: ClassVar[str] = "Coalescing and runs"

    quiet_period_seconds: float = setting(
        "MLOPS_QUIET_PERIOD_SECONDS",
        "60",
        number(0.0),
        "Files landing within this period are trained on together.",
    )
    max_wait_seconds: float = setting(
        "MLOPS_MAX_WAIT_SECONDS",
        "900",
        number(0.0),
        "A training request is started after this long even if files keep landing.",
    )
    timeout_seconds: float = setting(
        "MLOPS_RUN_TIMEOUT_SECONDS",
        "3600",
        number(1.0),
        "A run without a result after this long is marked failed.",
    )
    start_timeout_seconds: float = setting(
        "MLOPS_RUN_START_TIMEOUT_SECONDS",
        "900",
        number(1.0),
        "A run whose job could not be submitted after this long (the submit keeps failing) is marked failed.",
    )
    max_attempts: int = setting(
        "MLOPS_RUN_MAX_ATTEMPTS",
        "3",
        integer(1),
        "Tries at a training request: a failed or timed-out run is tried again until this many have failed.",
    )
    retry_backoff_seconds: float = setting(
        "MLOPS_RUN_RETRY_BACKOFF_SECONDS",
        "300",
        number(0.0),
        "Wait before the first retry of a failed run; each further retry waits twice as long as the one before.",
    )


@dataclass(frozen=True)
class WorkSettings:
    title: ClassVar[str] = "Failing work (files, runs, releases)"

    max_attempts: int = setting(
        "MLOPS_MAX_ATTEMPTS",
        "5",
        integer(1),
        "A record whose handling failed this many times in a row is set aside as stuck, with an audit entry.",
    )
    stuck_after_seconds: float = setting(
        "MLOPS_STUCK_AFTER_SECONDS",
        "21600",
        number(1.0),
        "A record still failing this long after its first failure is set aside as stuck.",
    )


@dataclass(frozen=True)
class Schedules:
    """The timers' NCRONTAB schedules, by timer function (they bind them as `%MLOPS_..._SCHEDULE%`)."""

    title: ClassVar[str] = (
        "Schedules (NCRONTAB: `second minute hour day month day-of-week`, in UTC unless `WEBSITE_TIME_ZONE`)"
    )

    reconcile: str = setting(
        "MLOPS_RECONCILE_SCHEDULE", "0 * * * * *", TEXT, "Schedule of the `reconcile` timer."
    )
    scheduled_retrain: str = setting(
        "MLOPS_RETRAIN_SCHEDULE", "0 0 3 * * 0", TEXT, "Schedule of the `scheduled_retrain` timer."
    )
    drift_check: str = setting(
        "MLOPS_DRIFT_SCHEDULE", "0 0 2 * * *", TEXT, "Schedule of the `drift_check` timer."
    )
    quality_check: str = setting(
        "MLOPS_QUALITY_SCHEDULE", "0 0 4 * * *", TEXT, "Schedule of the `quality_check` timer."
    )
    retention: str = setting(
        "MLOPS_RETENTION_SCHEDULE", "0 30 3 * * *", TEXT, "Schedule of the `retention` timer."
    )


@dataclass(frozen=True)
class DriftSettings:
    title: ClassVar[str] = "Drift"

    share: float = setting(
        "MLOPS_DRIFT_SHARE",
        "0.5",
        number(0.0, 1.0),
        "Share of drifted columns that makes the dataset drifted (Evidently's default).",
    )
    window_rows: int = setting(
        "MLOPS_DRIFT_WINDOW_ROWS",
        "10000",
        integer(1),
        "Most recent inference rows compared with the reference.",
    )
    window_hours: float = setting(
        "MLOPS_DRIFT_WINDOW_HOURS",
        "0",
        number(0.0),
        "If above 0: the inference files written in the last this many hours are the current data, "
        "instead of the last `MLOPS_DRIFT_WINDOW_ROWS` rows.",
    )
    sample_rows: int = setting(
        "MLOPS_DRIFT_SAMPLE_ROWS",
        "5000",
        integer(0, 1_000_000),
        "Rows of each data set the drift check keeps in memory for the report's charts; verdicts use every row.",
    )
    chunk_rows: int = setting(
        "MLOPS_DRIFT_CHUNK_ROWS",
        "100000",
        integer(100),
        "Rows the drift check parses at a time; its memory grows with this and the sample, not with the data.",
    )
    cooldown_seconds: float = setting(
        "MLOPS_DRIFT_COOLDOWN_SECONDS",
        "604800",
        number(0.0),
        "After drift asked to retrain a model version, more drift events for it ask again only after this long.",
    )
    job_timeout_seconds: float = setting(
        "MLOPS_DRIFT_JOB_TIMEOUT_SECONDS",
        "3600",
        number(60.0),
        "A drift check's job still unfinished after this long is cancelled and recorded as timed out (its late "
        "end is recorded, not acted on); the next timer submits a new one.",
    )
    prediction_column: str = setting(
        "MLOPS_DRIFT_PREDICTION_COLUMN",
        "prediction",
        STRIPPED,
        "Column of logged predictions in inference files; checked for drift against the champion's "
        "predictions on a sample of its training data.",
    )


def _on_azure(parsed: Mapping[str, Any]) -> bool:
    return parsed["MLOPS_BACKEND"] == "azure"


@dataclass(frozen=True)
class Settings:
    """Every setting, by concern (`settings.release.canary_percent`); `raw` holds each one's text."""

    title: ClassVar[str] = "General"

    backend: str = setting(
        "MLOPS_BACKEND",
        "local",
        choice("local", "azure"),
        "`local` (Azurite, MLflow on SQLite, local endpoint) or `azure`.",
    )
    home: Path = setting(
        "MLOPS_HOME", ".mlops", PATH, "Local working folder: MLflow store, run folders, endpoint state, logs."
    )
    model_name: str = setting(
        "MLOPS_MODEL_NAME", "mlops-model", TEXT, "Name of the model in the registry and of the endpoint."
    )
    storage: StorageSettings = group(StorageSettings)
    events: EventsSettings = group(EventsSettings)
    topics: Topics = group(Topics)
    azure: AzureSettings | None = group(AzureSettings, when=_on_azure, check=check_azure)
    local: LocalSettings = group(LocalSettings)
    containers: Containers = group(Containers)
    training: TrainingSettings = group(TrainingSettings)
    training_code: TrainingCodeSettings = group(TrainingCodeSettings, check=check_training_code)
    gates: GateSettings = group(GateSettings)
    slices: SliceSettings = group(SliceSettings, check=check_slices)
    data: DataSettings = group(DataSettings)
    runs: RunSettings = group(RunSettings)
    work: WorkSettings = group(WorkSettings)
    retention: RetentionSettings = group(RetentionSettings)
    ticks: TickSettings = group(TickSettings)
    schedules: Schedules = group(Schedules)
    drift: DriftSettings = group(DriftSettings)
    quality: QualitySettings = group(QualitySettings)
    release: ReleaseSettings = group(ReleaseSettings)
    notify: NotifySettings = group(NotifySettings)
    approvers: ApproverSettings = group(ApproverSettings, check=check_approvers)
    raw: dict[str, str] = field(repr=False, default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        raw = raw_values(cls, os.environ if env is None else env)
        return load(cls, raw, raw=raw)

    @property
    def endpoint_name(self) -> str:
        """The online endpoint that serves the model: the Azure endpoint, locally named after the model."""
        return self.azure.endpoint if self.azure is not None else self.model_name


SETTINGS = declared(Settings)
