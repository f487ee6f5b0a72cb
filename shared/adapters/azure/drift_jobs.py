"""The drift check as an Azure ML command job: `python -m shared.drift_job` in the training environment (which
has scipy, scikit-learn and pyarrow; the Function App has none of them), in the training runs' experiment, so
the workspace's RunCompleted reaches `on_run_completed` through the same subscription.

    drift-checks/<check id>/job.json       the check (the champion, its deployment, its dataset version)
    drift-checks/<check id>/output/        the job's `output`: outcome.json, or failure.json

in the datasets container (the workspace datastore). The job reads the blobs and writes the reports with the
compute's managed identity (the app's identity: docs/azure.md has its roles), with the app's own settings as
its environment, secrets left out; the champion is mounted as the job's `champion` input.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.adapters.azure.assets import PROJECT_ROOT, TrainingEnvironment
from shared.adapters.azure.jobs import datastore_uri, get_job, job_status, read_failure
from shared.adapters.azure.pipeline import install_model_requirements
from shared.config import AzureSettings, Settings
from shared.ports import BlobStore, DriftJob

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

log = logging.getLogger(__name__)

FOLDER = "drift-checks"
OUTPUT = "output"
# Settings the job must not carry: secrets (webhook URLs hold theirs in the path) and what only local mode uses.
WITHHELD = frozenset(
    {
        "MLOPS_NOTIFY_URLS",
        "MLOPS_NOTIFY_SECRET",
        "MLOPS_EVENTS_KEY",
        "MLOPS_STORAGE_CONNECTION_STRING",
        "MLOPS_FUNCTION_KEY",
    }
)


def check_folder(check_id: str) -> str:
    return f"{FOLDER}/{check_id}"


def job_settings(raw: Mapping[str, str]) -> dict[str, str]:
    """The app's settings as the job's environment, so it reads and judges as the app would."""
    return {name: value for name, value in raw.items() if name.startswith("MLOPS_") and name not in WITHHELD}


def drift_code_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The job's code: the `shared` package's Python files (the check, the drift statistics, the blob
    adapter, the settings, and the training's model loader)."""
    return sorted(
        path.relative_to(root) for path in (root / "shared").rglob("*.py") if "__pycache__" not in path.parts
    )


def drift_command(
    job: DriftJob, azure: AzureSettings, settings: Mapping[str, str], *, code: str, environment: str
) -> Any:
    """The command job for one check (an `azure.ai.ml.entities.Command`)."""
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.entities import ManagedIdentityConfiguration

    folder = check_folder(job.check_id)
    identity = (
        {"DEFAULT_IDENTITY_CLIENT_ID": azure.client_id, "AZURE_CLIENT_ID": azure.client_id}
        if azure.client_id
        else {}
    )
    return command(
        name=job.check_id,
        display_name=f"{job.check_id}: {job.model.id} against {job.dataset_version}",
        description="python -m shared.drift_job: production's inputs and predictions against the champion's data",
        experiment_name=azure.experiment,
        compute=azure.compute,
        code=code,
        environment=environment,
        command=(
            # the champion's own requirements first (a LightGBM or XGBoost model built by the team's code), as
            # the training pipeline's evaluate step does, so the job can score the reference sample with it
            f"{install_model_requirements('champion')} && "
            "python -m shared.drift_job --job ${{inputs.job}} --champion ${{inputs.champion}} "
            "--output ${{outputs.output}}"
        ),
        inputs={
            "job": Input(type="uri_file", path=datastore_uri(azure.datastore, f"{folder}/job.json")),
            "champion": Input(type="mlflow_model", path=f"azureml:{job.model.name}:{job.model.version}"),
        },
        outputs={
            OUTPUT: Output(
                type="uri_folder", path=datastore_uri(azure.datastore, f"{folder}/{OUTPUT}/"), mode="rw_mount"
            )
        },
        tags={"mlops.kind": "drift_check", "mlops.check_id": job.check_id, "mlops.model": job.model.id},
        identity=ManagedIdentityConfiguration(client_id=azure.client_id or None),
        environment_variables={
            **job_settings(settings),
            "MLOPS_BACKEND": "azure",
            **identity,
            **({"TRACEPARENT": job.trace} if job.trace else {}),
        },
    )


class AzureMLDriftJobs:
    def __init__(
        self,
        ml_client: Callable[[], MLClient],
        blobs: BlobStore,
        settings: Settings,
        environment: TrainingEnvironment | None = None,
        code_root: Path = PROJECT_ROOT,
    ) -> None:
        if settings.azure is None:
            raise ValueError("AzureMLDriftJobs needs the azure settings (MLOPS_BACKEND=azure)")
        self._ml = ml_client
        self._blobs = blobs
        self._azure = settings.azure
        self._raw = settings.raw
        self._container = settings.containers.datasets
        self._environment = environment or TrainingEnvironment(ml_client, settings.azure)
        self._code_root = code_root

    def submit(self, job: DriftJob) -> None:
        from azure.core.exceptions import HttpResponseError

        if self._job(job.check_id) is not None:
            return  # submitted before: the check id is the job's name
        self._blobs.write(
            self._container,
            f"{check_folder(job.check_id)}/job.json",
            json.dumps(asdict(job), indent=1, sort_keys=True).encode(),
            content_type="application/json",
        )
        environment = self._environment.reference()
        with tempfile.TemporaryDirectory(prefix="mlops-drift-code-") as folder:
            for relative in drift_code_files(self._code_root):
                target = Path(folder) / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self._code_root / relative, target)
            command_job = drift_command(job, self._azure, self._raw, code=folder, environment=environment)
            try:
                self._ml().jobs.create_or_update(command_job)
            except HttpResponseError as error:
                if error.status_code in (400, 409) and self._job(job.check_id) is not None:
                    return  # another worker created it between our check and our PUT
                raise
        log.info("drift check job submitted", extra={"check_id": job.check_id, "model_version": job.model.id})

    def status(self, check_id: str) -> str:
        return job_status(self._job(check_id))

    def cancel(self, check_id: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        if job_status(self._job(check_id)) not in ("Queued", "Running"):
            return
        try:
            # the poller is not waited on: the job's own status (and its RunStatusChanged) tells when it stopped
            self._ml().jobs.begin_cancel(check_id)
        except ResourceNotFoundError:
            return
        log.info("drift check job cancelled", extra={"check_id": check_id})

    def outcome(self, check_id: str) -> dict[str, Any]:
        path = f"{check_folder(check_id)}/{OUTPUT}/outcome.json"
        blob = self._blobs.read(self._container, path)
        if blob is None:
            raise LookupError(
                f"drift check {check_id} has no outcome: {self._container}/{path} does not exist"
            )
        try:
            return json.loads(blob.data)
        except ValueError as error:
            raise LookupError(f"drift check {check_id}: {path} is not JSON ({error})") from None

    def failure(self, check_id: str) -> dict[str, Any] | None:
        return read_failure(self._blobs, self._container, f"{check_folder(check_id)}/{OUTPUT}/failure.json")

    def _job(self, check_id: str) -> Any:
        return get_job(self._ml(), check_id)
