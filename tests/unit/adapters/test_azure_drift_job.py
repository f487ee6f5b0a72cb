"""The drift check's Azure ML command job, built and checked by the SDK's own schemas, without a network: its
inputs bind, its command is one the job's entry point accepts, and it carries the app's settings but not its
secrets."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from shared.adapters.azure.drift_jobs import drift_code_files, drift_command, job_settings
from shared.ports import DriftJob, ModelVersion
from tests.contract.azure_stub import AZURE_SETTINGS

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")
ROOT = Path(__file__).resolve().parents[3]
JOB = DriftJob(
    "drift-20261203020000-0123abcd",
    ModelVersion(
        "mlops-model", "3", {"mlops.dataset_version": "ds-1"}, "azureml://jobs/train/outputs/output"
    ),
    "mlops-model-v3",
    "ds-1",
)
SETTINGS = {
    **AZURE_SETTINGS,
    "MLOPS_NOTIFY_URLS": "https://hooks.example/secret-path",
    "MLOPS_NOTIFY_SECRET": "s3cret",
    "MLOPS_DRIFT_WINDOW_HOURS": "24",
    "OTHER_SETTING": "not ours",
}


@pytest.fixture(scope="module")
def azure():
    from shared.config import Settings

    return Settings.from_env(AZURE_SETTINGS).azure


def _command(azure):
    return drift_command(JOB, azure, SETTINGS, code=str(ROOT), environment="azureml:mlops-training:1")


def test_the_drift_job_passes_the_sdk_schema_and_binds_every_input(azure) -> None:
    from azure.ai.ml import load_job

    job = _command(azure)._to_job()
    job._validate()
    yaml = io.StringIO()
    job.dump(yaml)
    reloaded = load_job(io.StringIO(yaml.getvalue()))
    assert reloaded.name == JOB.check_id
    assert reloaded.experiment_name == "mlops"  # the training runs' experiment: the same event route
    assert set(reloaded.inputs) == {"job", "champion"}


def test_the_drift_job_rest_body(azure) -> None:
    from azure.ai.ml.entities._job.to_rest_functions import to_rest_job_object

    body = to_rest_job_object(_command(azure)).as_dict()["properties"]
    store = "azureml://datastores/mlopsdatasets/paths"
    assert body["inputs"] == {
        "job": {"jobInputType": "uri_file", "uri": f"{store}/drift-checks/{JOB.check_id}/job.json"},
        "champion": {"jobInputType": "mlflow_model", "uri": "azureml:mlops-model:3"},
    }
    assert body["outputs"]["output"]["uri"] == f"{store}/drift-checks/{JOB.check_id}/output/"
    assert body["identity"] == {
        "identityType": "Managed",
        "clientId": AZURE_SETTINGS["MLOPS_AZURE_CLIENT_ID"],
    }
    variables = body["environmentVariables"]
    assert variables["MLOPS_DRIFT_WINDOW_HOURS"] == "24" and variables["MLOPS_BACKEND"] == "azure"
    assert variables["AZURE_CLIENT_ID"] == AZURE_SETTINGS["MLOPS_AZURE_CLIENT_ID"]
    assert {"MLOPS_NOTIFY_URLS", "MLOPS_NOTIFY_SECRET", "OTHER_SETTING"} & set(variables) == set()


def test_the_job_entry_point_accepts_the_jobs_command(azure, tmp_path: Path) -> None:
    from shared.drift_job.__main__ import main

    command = _command(azure)._to_job().command
    bound = re.sub(r"\$\{\{(inputs|outputs)\.(\w+)\}\}", lambda m: str(tmp_path / m[2]), command).split()
    assert bound[:3] == ["python", "-m", "shared.drift_job"]
    # an unreadable job file is a recorded failure of the check, not an argument error
    assert main(bound[3:]) == 1
    assert "FileNotFoundError" in (tmp_path / "output" / "failure.json").read_text()


def test_the_settings_the_job_gets_are_the_apps_without_its_secrets() -> None:
    passed = job_settings(SETTINGS)
    assert passed["MLOPS_MODEL_NAME"] == SETTINGS["MLOPS_MODEL_NAME"]
    assert not any(name in passed for name in ("MLOPS_NOTIFY_URLS", "MLOPS_NOTIFY_SECRET", "OTHER_SETTING"))


def test_the_code_snapshot_holds_the_job_and_what_it_imports() -> None:
    files = {path.as_posix() for path in drift_code_files(ROOT)}
    assert {
        "shared/__init__.py",
        "shared/drift_job/__main__.py",
        "shared/domain/drift/decision.py",
        "shared/adapters/azure/storage.py",
        "shared/training/model.py",
    } <= files
    assert not any("__pycache__" in name or not name.endswith(".py") for name in files)


# --- the adapter on the real SDK clients, over a stub transport ---------------------------------------------------


@pytest.fixture()
def world():
    from tests.contract.azure_stub import AzureWorld

    return AzureWorld()


def _drift_jobs(world):
    from shared.adapters.azure.drift_jobs import AzureMLDriftJobs

    return AzureMLDriftJobs(world.ml_client(), world.blob_store(), world.settings)


def test_a_check_is_one_job_however_often_it_is_submitted(world) -> None:
    jobs = _drift_jobs(world)
    jobs.submit(JOB)
    jobs.submit(JOB)

    assert list(world.ml.jobs) == [JOB.check_id]
    assert jobs.status(JOB.check_id) == "Queued"
    body = world.ml.jobs[JOB.check_id]["properties"]
    assert body["command"].startswith("python -m shared.drift_job")
    spec = world.blob_store().read(
        world.settings.containers.datasets, f"drift-checks/{JOB.check_id}/job.json"
    )
    assert spec is not None and b'"mlops-model-v3"' in spec.data
    world.ml.set_job_status(JOB.check_id, "Finalizing")
    assert jobs.status(JOB.check_id) == "Running"
    assert jobs.status("drift-unknown") == "NotFound"


def test_the_outcome_and_the_failure_are_read_from_the_jobs_output(world) -> None:
    jobs = _drift_jobs(world)
    jobs.submit(JOB)
    with pytest.raises(LookupError):
        jobs.outcome(JOB.check_id)
    assert jobs.failure(JOB.check_id) is None
    output = f"drift-checks/{JOB.check_id}/output"
    blobs, container = world.blob_store(), world.settings.containers.datasets
    blobs.write(
        container, f"{output}/outcome.json", b'{"outcome": "skipped", "reason": "no inference data yet"}'
    )
    blobs.write(container, f"{output}/failure.json", b"not json")

    assert jobs.outcome(JOB.check_id)["reason"] == "no inference data yet"
    assert jobs.failure(JOB.check_id) is None  # unreadable: the studio's logs tell
