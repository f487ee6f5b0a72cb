"""Training runs as Azure ML command jobs: `python -m shared.training`, the entry point a local run uses.

The run id is the job's name, so submitting twice makes one job, and the RunCompleted event Azure ML
publishes names the run. Each run keeps its files together in the datasets container (a workspace datastore,
`MLOPS_AZURE_DATASTORE`):

    files/<sha256>.<ext>            the dataset's files, mounted read-only as the job's `data` input
    runs/<run id>/manifest.json     the manifest, its paths relative to `files/`
    runs/<run id>/config.json       the training settings
    runs/<run id>/output/           the job's `output`: model/ (MLflow), evaluation.json, run.json

Results are read back from there with the app's own blob access: one small GET, instead of downloading the
whole output (model included) through the workspace's artifact APIs.
"""

from __future__ import annotations

import json
import logging
import posixpath
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.adapters.azure.assets import PROJECT_ROOT, TrainingEnvironment, stage_training_code
from shared.adapters.azure.pipeline import ProjectEnvironment, training_pipeline
from shared.config import AzureSettings, Settings
from shared.ports import BlobStore, RunResults, TrainingJob

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

log = logging.getLogger(__name__)

OUTPUT = "output"
# Azure ML job statuses (RunHistory) on the port's six; anything new counts as running, so the reconcile
# tick's run timeout still ends it.
STATUSES = {
    "NotStarted": "Queued",
    "Starting": "Queued",
    "Provisioning": "Queued",
    "Preparing": "Queued",
    "Queued": "Queued",
    "Running": "Running",
    "Finalizing": "Running",
    "CancelRequested": "Running",
    "NotResponding": "Running",
    "Paused": "Running",
    "Completed": "Completed",
    "Failed": "Failed",
    "Canceled": "Canceled",
}


def get_job(ml: MLClient, name: str) -> Any:
    """The workspace's job of that name, None if there is none."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return ml.jobs.get(name)
    except ResourceNotFoundError:
        return None


def job_status(found: Any) -> str:
    """A job's status on the port's six (None: NotFound)."""
    if found is None:
        return "NotFound"
    status = str(getattr(found.status, "value", found.status) or "")
    return STATUSES.get(status, "Running")


def read_failure(blobs: BlobStore, container: str, path: str) -> dict[str, Any] | None:
    """What a job wrote as its `failure.json` when our code found the reason; None when it wrote nothing readable
    (then the studio's logs tell)."""
    blob = blobs.read(container, path)
    if blob is None:
        return None
    try:
        failure = json.loads(blob.data)
    except ValueError:
        return None
    return failure if isinstance(failure, dict) else None


def run_folder(run_id: str) -> str:
    return f"runs/{run_id}"


def model_uri(run_id: str) -> str:
    """The MLflow model in the job's output, as Azure ML names it (registering from it records lineage)."""
    return f"azureml://jobs/{run_id}/outputs/{OUTPUT}/paths/model"


def datastore_uri(datastore: str, path: str) -> str:
    return f"azureml://datastores/{datastore}/paths/{path}"


def job_manifest(manifest: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The folder holding the manifest's files, and the manifest with its paths relative to that folder.

    The job mounts that folder (a datastore's root cannot be an input); the files and their hashes, which
    the training verifies, are unchanged, and so is the manifest's id.
    """
    paths = [entry["path"] for entry in manifest["files"]]
    if not paths:
        raise ValueError(f"manifest {manifest.get('id')} lists no files")
    folder = posixpath.commonpath([posixpath.dirname(path) for path in paths])
    if not folder:
        raise ValueError(
            f"manifest {manifest.get('id')} has files outside a common folder ({paths[:3]}...); "
            "an Azure ML job mounts one folder of the datastore"
        )
    files = [{**entry, "path": posixpath.relpath(entry["path"], folder)} for entry in manifest["files"]]
    return folder, {**manifest, "files": files}


def training_command(
    job: TrainingJob,
    azure: AzureSettings,
    *,
    code: str,
    environment: str,
    data_folder: str,
) -> Any:
    """The command job for one run (an `azure.ai.ml.entities.Command`), inputs and outputs on the datastore."""
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.entities import ManagedIdentityConfiguration

    folder = run_folder(job.run_id)
    inputs: dict[str, Any] = {
        "manifest": Input(type="uri_file", path=datastore_uri(azure.datastore, f"{folder}/manifest.json")),
        "data": Input(
            type="uri_folder", path=datastore_uri(azure.datastore, f"{data_folder}/"), mode="ro_mount"
        ),
        "config": Input(type="uri_file", path=datastore_uri(azure.datastore, f"{folder}/config.json")),
    }
    arguments = (
        "python -m shared.training --manifest ${{inputs.manifest}} --data-dir ${{inputs.data}} "
        "--config ${{inputs.config}} --output ${{outputs.output}}"
    )
    if job.champion is not None:
        inputs["champion"] = Input(
            type="mlflow_model", path=f"azureml:{job.champion.name}:{job.champion.version}"
        )
        arguments += " --champion ${{inputs.champion}}"
    tags = {
        **job.tags,
        "mlops.run_id": job.run_id,
        "mlops.dataset_version": job.dataset_version,
        "mlops.champion": job.champion.id if job.champion else "",
    }
    return command(
        name=job.run_id,
        display_name=f"{job.run_id} on {job.dataset_version}",
        description="python -m shared.training: train, then score challenger and champion on one holdout",
        experiment_name=azure.experiment,
        compute=azure.compute,
        code=code,
        environment=environment,
        command=f"{arguments} --run-id {job.run_id}",
        inputs=inputs,
        outputs={
            OUTPUT: Output(
                type="uri_folder", path=datastore_uri(azure.datastore, f"{folder}/{OUTPUT}/"), mode="rw_mount"
            )
        },
        tags=tags,
        # The job reads and writes the datastore as the compute's managed identity: the storage account
        # takes no keys (credential-less datastore). docs/azure.md has the role assignments.
        identity=ManagedIdentityConfiguration(client_id=azure.client_id or None),
        # ...and so do the SDKs inside it (MLflow's tracking, azure-identity): a user-assigned identity has to
        # be named, by Azure ML's variable and by DefaultAzureCredential's.
        # The run's trace, for anything in the job that reports to it.
        environment_variables={
            **(
                {"DEFAULT_IDENTITY_CLIENT_ID": azure.client_id, "AZURE_CLIENT_ID": azure.client_id}
                if azure.client_id
                else {}
            ),
            **({"TRACEPARENT": job.trace} if job.trace else {}),
        },
    )


class AzureMLTrainingJobs:
    def __init__(
        self,
        ml_client: Callable[[], MLClient],
        blobs: BlobStore,
        settings: Settings,
        environment: TrainingEnvironment | None = None,
        code_root: Path = PROJECT_ROOT,
    ) -> None:
        if settings.azure is None:
            raise ValueError("AzureMLTrainingJobs needs the azure settings (MLOPS_BACKEND=azure)")
        self._ml = ml_client
        self._blobs = blobs
        self._azure = settings.azure
        self._container = settings.containers.datasets
        self._environment = environment or TrainingEnvironment(ml_client, settings.azure)
        self._project_environment = ProjectEnvironment(ml_client, settings.azure)
        self._code_root = code_root

    def submit(self, job: TrainingJob) -> None:
        from azure.core.exceptions import HttpResponseError

        if self._job(job.run_id) is not None:
            return  # submitted before: the run id is the job's name
        data_folder = self._write_inputs(job)
        environment = self._environment.reference()
        with tempfile.TemporaryDirectory(prefix="mlops-training-code-") as folder:
            code = stage_training_code(Path(folder), self._code_root)
            command_job = training_command(
                job, self._azure, code=str(code), environment=environment, data_folder=data_folder
            )
            project = (job.config.get("code") or {}).get("code")
            if project is not None:  # the team's own code: our preparation, their step, our evaluation
                command_job = self._pipeline(job, command_job, str(code), environment, Path(project))
            try:
                # Uploads the code snapshot only if the workspace has no code asset with its hash, then one PUT.
                self._ml().jobs.create_or_update(command_job)
            except HttpResponseError as error:
                if error.status_code in (400, 409) and self._job(job.run_id) is not None:
                    return  # another worker created it between our check and our PUT
                raise
        log.info(
            "training job submitted",
            extra={
                "run_id": job.run_id,
                "dataset_version": job.dataset_version,
                "compute": self._azure.compute,
            },
        )

    def status(self, run_id: str) -> str:
        return job_status(self._job(run_id))

    def results(self, run_id: str) -> RunResults:
        path = f"{run_folder(run_id)}/{OUTPUT}/evaluation.json"
        blob = self._blobs.read(self._container, path)
        if blob is None:
            raise LookupError(f"run {run_id} has no results: {self._container}/{path} does not exist")
        return RunResults(run_id=run_id, evaluation=json.loads(blob.data), model_uri=model_uri(run_id))

    def _pipeline(
        self, job: TrainingJob, command_job: Any, code: str, environment: str, project: Path
    ) -> Any:
        """The pipeline job of a run of the team's code, with the command job's inputs, output and tags."""
        built = command_job._to_job() if hasattr(command_job, "_to_job") else command_job
        return training_pipeline(
            job,
            self._azure,
            inputs=dict(built.inputs),
            output=built.outputs[OUTPUT],
            platform_code=code,
            platform_environment=environment,
            project_environment=self._project_environment.reference(
                project, (job.config.get("code") or {}).get("environment")
            ),
            tags=dict(built.tags),
        )

    def failure(self, run_id: str) -> dict[str, Any] | None:
        """What the job wrote in its output's `failure.json` when our code found the reason (bad input, a
        training command that failed); None when the job died without saying (then the studio's logs tell)."""
        return read_failure(self._blobs, self._container, f"{run_folder(run_id)}/{OUTPUT}/failure.json")

    def _job(self, run_id: str) -> Any:
        return get_job(self._ml(), run_id)

    def _write_inputs(self, job: TrainingJob) -> str:
        """Write the run's manifest and config next to its output (overwritten: a retry writes the same)."""
        data_folder, manifest = job_manifest(job.manifest)
        folder = run_folder(job.run_id)
        for name, body in (("manifest.json", manifest), ("config.json", job.config)):
            self._blobs.write(
                self._container,
                f"{folder}/{name}",
                json.dumps(body, indent=1, sort_keys=True).encode(),
                content_type="application/json",
            )
        return data_folder
