"""MLflow tracking of a finished run, only when MLFLOW_TRACKING_URI is set (Azure ML sets it in a job).

Tracking is a record for people, not part of the run's answer: the model and `evaluation.json` are in the job's
output either way, and a tracking server that refuses (an identity without the right role, a network rule, a
throttled workspace) costs a warning and a `tracking` note in `run.json`, never the run.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

DEFAULT_EXPERIMENT = "mlops"
_MAX_PARAM = 500


def tracking_enabled() -> bool:
    return bool(os.environ.get("MLFLOW_TRACKING_URI"))


log = logging.getLogger(__name__)


def track_or_warn(
    evaluation: dict[str, Any], estimator_params: dict[str, Any], output: Path
) -> dict[str, str]:
    """`track`, or a warning and `run.json` saying why tracking failed."""
    try:
        return track(evaluation, estimator_params, output)
    except Exception as error:  # any refusal of the tracking server: the run's results stand without it
        reason = f"{type(error).__name__}: {error}"[:1000]
        log.warning("MLflow tracking failed; the run's model and evaluation are in its output: %s", reason)
        info = {"tracking": "failed", "reason": reason}
        (output / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return info


def track(evaluation: dict[str, Any], estimator_params: dict[str, Any], output: Path) -> dict[str, str]:
    """Log params, metrics and the saved model folder; write and return `run.json`.

    In an Azure ML job MLFLOW_RUN_ID names the job's own run, which is resumed. Elsewhere a run already tagged
    with this mlops run id is resumed too, so running the same job twice does not make two MLflow runs.
    """
    import mlflow

    run_id = evaluation["run_id"]
    existing = None
    if not os.environ.get("MLFLOW_RUN_ID"):
        experiment = mlflow.set_experiment(os.environ.get("MLOPS_EXPERIMENT") or DEFAULT_EXPERIMENT)
        existing = _run_tagged(mlflow, experiment.experiment_id, run_id) if run_id else None
    with mlflow.start_run(run_id=existing, run_name=run_id or None) as run:
        mlflow.set_tags(
            {
                "mlops.run_id": run_id,
                "mlops.dataset_version": evaluation["dataset_version"],
                "mlops.code_version": evaluation.get("code_version", ""),
            }
        )
        mlflow.log_params(_params(evaluation, estimator_params))
        mlflow.log_metrics(evaluation["challenger"])
        mlflow.log_metrics({f"champion_{k}": v for k, v in (evaluation["champion"] or {}).items()})
        mlflow.log_metrics(_comparison_metrics(evaluation.get("comparison")))
        mlflow.log_artifacts(str(output / "model"), "model")
        mlflow.log_artifact(str(output / "evaluation.json"))
        info = {"mlflow_run_id": run.info.run_id, "artifact_uri": run.info.artifact_uri}
    (output / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def _comparison_metrics(comparison: dict[str, Any] | None) -> dict[str, float]:
    if not comparison:
        return {}
    names = ("difference", "ci_low", "ci_high", "p_value")
    return {f"comparison_{name}": comparison[name] for name in names if comparison.get(name) is not None}


def _run_tagged(mlflow: Any, experiment_id: str, run_id: str) -> str | None:
    escaped = run_id.replace("'", "\\'")
    runs = mlflow.MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`mlops.run_id` = '{escaped}'", max_results=1
    )
    return runs[0].info.run_id if runs else None


def _params(evaluation: dict[str, Any], estimator_params: dict[str, Any]) -> dict[str, str]:
    params = {
        "dataset_version": evaluation["dataset_version"],
        "task": evaluation["task"],
        "target": evaluation["target"],
        "primary_metric": evaluation["primary_metric"],
        "estimator": evaluation["estimator"],
        "seed": evaluation["seed"],
        "holdout_fraction": evaluation["holdout"]["fraction"],
        "n_features": len(evaluation["features"]),
        "rows_train": evaluation["rows"]["train"],
        "rows_holdout": evaluation["rows"]["holdout"],
    }
    params.update({f"estimator.{key}": value for key, value in estimator_params.items()})
    return {key: str(value)[:_MAX_PARAM] for key, value in params.items()}
