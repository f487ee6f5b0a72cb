"""The local stand-in for an Azure ML job: fetch inputs, run the training entry point, announce the result.

Azure ML runs `python -m shared.training ...` on a compute cluster and emits RunCompleted through Event Grid.
Here the same command runs as a subprocess, and completion is published to the local host's workspace topic
in Azure ML's documented event schema, from the experiment MLOPS_AZURE_EXPERIMENT names, as in Azure: the
routing table's run routes deliver only that experiment's runs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from shared.adapters.local import training_command
from shared.adapters.local.announce import announce
from shared.adapters.local.jobs import FAILURE_FILE
from shared.adapters.local.paths import PROJECT_ROOT, artifact_root, mlflow_uri
from shared.config import Settings, experiment_name

log = logging.getLogger("mlops.run_job")


def main(folder: Path) -> int:
    settings = Settings.from_env()
    job = json.loads((folder / "job.json").read_text())
    experiment = experiment_name(settings.raw)
    _status(folder, "Running")
    failure: dict[str, str] | None = {"stage": "inputs", "reason": "the job stopped before it finished"}
    try:
        _fetch_inputs(job, folder, settings)
        _ensure_experiment(settings, experiment)
        code = (job["config"].get("code") or {}).get("code")
        if code is None:
            failure = _built_in(job, folder, experiment)
        else:
            training_command.run(job, folder, settings, experiment)
            failure = None
    except training_command.RunFailed as error:
        failure = error.as_dict()
    except Exception as error:  # the job's own machinery: recorded as the run's reason, then re-raised
        failure = {"stage": "inputs", "reason": f"{type(error).__name__}: {error}", "log_tail": ""}
        raise
    finally:
        if failure is not None:
            outputs = folder / "outputs"
            outputs.mkdir(parents=True, exist_ok=True)
            if not (outputs / FAILURE_FILE).exists():
                (outputs / FAILURE_FILE).write_text(json.dumps(failure, indent=1))
        status = "Completed" if failure is None else "Failed"
        _status(folder, status)
        _announce(job, status, settings, experiment)
    return 0 if failure is None else 1


def _built_in(job: dict, folder: Path, experiment: str) -> dict[str, str] | None:
    """The built-in trainer and the evaluation in one process (the same stages without the processes between
    them); None, or why it failed."""
    command = [
        sys.executable,
        "-m",
        "shared.training",
        "--manifest",
        str(folder / "inputs" / "manifest.json"),
        "--data-dir",
        str(folder / "inputs"),
        "--config",
        str(folder / "inputs" / "config.json"),
        "--output",
        str(folder / "outputs"),
        "--run-id",
        job["run_id"],
    ]
    if job.get("champion_dir"):
        command += ["--champion", job["champion_dir"]]
    # the training entry point tracks into MLOPS_EXPERIMENT when no Azure ML run hosts it
    code = subprocess.call(command, cwd=PROJECT_ROOT, env={**os.environ, "MLOPS_EXPERIMENT": experiment})
    if code == 0:
        return None
    return {"stage": "evaluation", "reason": f"the built-in trainer exited with {code}", "log_tail": ""}


def _fetch_inputs(job: dict, folder: Path, settings: Settings) -> None:
    from shared.adapters.azure.storage import AzureBlobStore

    inputs = folder / "inputs"
    blobs = AzureBlobStore.from_connection_string(settings.storage.connection_string)
    for entry in job["manifest"]["files"]:
        blob = blobs.read(settings.containers.datasets, entry["path"])
        if blob is None:
            raise FileNotFoundError(
                f"dataset file {entry['path']} is missing from {settings.containers.datasets}"
            )
        target = inputs / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob.data)
    (inputs / "manifest.json").write_text(json.dumps(job["manifest"], indent=1))
    (inputs / "config.json").write_text(json.dumps(job["config"], indent=1))


def _ensure_experiment(settings: Settings, experiment: str) -> None:
    """Keep artifacts under MLOPS_HOME rather than wherever the process happens to run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri(settings.home))
    if client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment, artifact_location=artifact_root(settings.home).as_uri())


def _announce(job: dict, status: str, settings: Settings, experiment: str) -> None:
    tags = job.get("tags") or {}
    announce(job["run_id"], status, settings, experiment, tags, {"dataset_version": job["dataset_version"]})


def _status(folder: Path, status: str) -> None:
    (folder / "status.json").write_text(json.dumps({"status": status}))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(Path(sys.argv[1])))
