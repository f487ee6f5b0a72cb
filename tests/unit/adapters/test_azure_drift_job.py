"""The drift check's Azure ML command job, built and checked by the SDK's own schemas, without a network: its
inputs bind, its command is one the job's entry point accepts, and it carries the app's settings but not its
secrets."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import subprocess
import sys
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


def _run_bound(command: str, tmp_path: Path, *, champion_requirements: str | None) -> list[str]:
    """Run the job's command line in a shell, its inputs and outputs bound to folders under `tmp_path`, with a
    `python` on the PATH that records each call (and pretends pip installs): the calls it made, in order."""
    champion = tmp_path / "champion"
    champion.mkdir()
    if champion_requirements is not None:
        (champion / "requirements.txt").write_text(champion_requirements)
    bound = re.sub(r"\$\{\{(inputs|outputs)\.(\w+)\}\}", lambda m: str(tmp_path / m[2]), command)
    shim = tmp_path / "bin" / "python"
    shim.parent.mkdir()
    shim.write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path / "calls"}\n'
        f'if [ "$1 $2" = "-m pip" ]; then exit 0; fi\nexec {sys.executable} "$@"\n'
    )
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", bound], cwd=ROOT, env=env, capture_output=True, text=True)
    # an unreadable job file is a recorded failure of the check, not an argument error
    assert done.returncode == 1, done.stderr
    assert "FileNotFoundError" in (tmp_path / "output" / "failure.json").read_text()
    return (tmp_path / "calls").read_text().splitlines()


def test_the_job_installs_the_champions_own_requirements_before_the_check(azure, tmp_path: Path) -> None:
    command = _command(azure)._to_job().command

    calls = _run_bound(command, tmp_path, champion_requirements="lightgbm==4.5.0\n")

    assert calls[0] == f"-m pip install --quiet -r {tmp_path / 'champion' / 'requirements.txt'}"
    assert calls[1].startswith("-m shared.drift_job --job ")
    assert f"--champion {tmp_path / 'champion'}" in calls[1]


def test_a_champion_without_requirements_goes_straight_to_the_check(azure, tmp_path: Path) -> None:
    calls = _run_bound(_command(azure)._to_job().command, tmp_path, champion_requirements=None)

    assert [call.split()[:2] for call in calls] == [["-m", "shared.drift_job"]]


def test_the_settings_the_job_gets_are_the_apps_without_its_secrets() -> None:
    passed = job_settings(SETTINGS | {"MLOPS_FUNCTION_KEY": "function-key"})
    assert passed["MLOPS_MODEL_NAME"] == SETTINGS["MLOPS_MODEL_NAME"]
    secrets = ("MLOPS_NOTIFY_URLS", "MLOPS_NOTIFY_SECRET", "MLOPS_FUNCTION_KEY", "OTHER_SETTING")
    assert not any(name in passed for name in secrets)


def test_the_job_reads_the_settings_it_is_given_as_the_app_does() -> None:
    from shared.config import Settings

    app = Settings.from_env(SETTINGS)
    job = Settings.from_env(job_settings(app.raw) | {"MLOPS_BACKEND": "azure"})

    differs = {
        group.name
        for group in dataclasses.fields(Settings)
        if group.name != "raw" and getattr(job, group.name) != getattr(app, group.name)
    }
    assert differs == {"notify"}  # its webhook URLs and signing secret, withheld


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
    assert "&& python -m shared.drift_job --job" in body["command"]
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


def test_cancel_asks_azure_ml_to_stop_a_running_job_and_leaves_an_ended_one(world) -> None:
    jobs = _drift_jobs(world)
    jobs.submit(JOB)
    world.ml.set_job_status(JOB.check_id, "Running")

    jobs.cancel(JOB.check_id)

    assert world.ml.cancelled == [JOB.check_id]
    assert jobs.status(JOB.check_id) == "Running"  # CancelRequested, until the compute has stopped it
    world.ml.set_job_status(JOB.check_id, "Canceled")
    jobs.cancel(JOB.check_id)
    jobs.cancel("drift-unknown")
    assert world.ml.cancelled == [JOB.check_id]  # nothing asked for an ended or unknown job
