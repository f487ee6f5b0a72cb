"""Every azure-ai-ml entity the adapters send, built and checked by the SDK's own schemas, without a network."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shared.adapters.azure.assets import (
    TRAINING_REQUIREMENTS,
    TrainingEnvironment,
    conda_specification,
    is_environment_reference,
    stage_training_code,
    training_code_files,
)
from shared.adapters.azure.endpoints import deployment_entity, endpoint_entity
from shared.adapters.azure.jobs import job_manifest, model_uri, training_command
from shared.ports import ModelVersion, TrainingJob
from tests.contract.azure_stub import AZURE_SETTINGS

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")
ROOT = Path(__file__).resolve().parents[3]
MANIFEST = {
    "id": "ds-0123456789abcdef",
    "files": [
        {"name": "a.csv", "sha256": "aa", "rows": 10, "path": "files/aa.csv"},
        {"name": "b.parquet", "sha256": "bb", "rows": 5, "path": "files/bb.parquet"},
    ],
    "schema": {"age": "number"},
    "rows": 15,
}
CHAMPION = ModelVersion("mlops-model", "3", {}, "azureml://jobs/train-old/outputs/output/paths/model")


@pytest.fixture(scope="module")
def azure():
    from shared.config import Settings

    return Settings.from_env(AZURE_SETTINGS).azure


def _job(champion: ModelVersion | None = CHAMPION) -> TrainingJob:
    return TrainingJob(
        run_id="train-0123456789abcdef",
        dataset_version=MANIFEST["id"],
        manifest=MANIFEST,
        config={"task": "regression"},
        champion=champion,
        tags={"mlops.request": "req-1"},
    )


def _command(azure, champion: ModelVersion | None = CHAMPION):
    return training_command(
        _job(champion), azure, code=str(ROOT), environment="azureml:mlops-training:1", data_folder="files"
    )


def test_the_training_job_passes_the_sdk_schema_and_binds_every_input(azure) -> None:
    from azure.ai.ml import load_job

    job = _command(azure)._to_job()  # the CommandJob that `jobs.create_or_update` sends
    job._validate()  # raises if the command names an input or output the job does not have
    yaml = io.StringIO()
    job.dump(yaml)
    reloaded = load_job(io.StringIO(yaml.getvalue()))  # the SDK's marshmallow schema, as `az ml job create`
    assert reloaded.name == "train-0123456789abcdef"
    assert reloaded.experiment_name == "mlops"
    assert set(reloaded.inputs) == {"manifest", "data", "config", "champion"}


def test_the_training_job_rest_body(azure) -> None:
    from azure.ai.ml.entities._job.to_rest_functions import to_rest_job_object

    body = to_rest_job_object(_command(azure)).as_dict()["properties"]
    assert body["jobType"] == "Command"
    assert body["command"] == (
        "python -m shared.training --manifest ${{inputs.manifest}} --data-dir ${{inputs.data}} "
        "--config ${{inputs.config}} --output ${{outputs.output}} --champion ${{inputs.champion}} "
        "--run-id train-0123456789abcdef"
    )
    store = "azureml://datastores/mlopsdatasets/paths"
    assert body["inputs"] == {
        "manifest": {"jobInputType": "uri_file", "uri": f"{store}/runs/train-0123456789abcdef/manifest.json"},
        "data": {"jobInputType": "uri_folder", "uri": f"{store}/files/", "mode": "ReadOnlyMount"},
        "config": {"jobInputType": "uri_file", "uri": f"{store}/runs/train-0123456789abcdef/config.json"},
        "champion": {"jobInputType": "mlflow_model", "uri": "azureml:mlops-model:3"},
    }
    assert body["outputs"] == {
        "output": {
            "jobOutputType": "uri_folder",
            "uri": f"{store}/runs/train-0123456789abcdef/output/",
            "mode": "ReadWriteMount",
        }
    }
    assert (body["computeId"], body["environmentId"], body["experimentName"]) == (
        "cpu-cluster",
        "azureml:mlops-training:1",
        "mlops",
    )
    assert body["identity"] == {
        "identityType": "Managed",
        "clientId": AZURE_SETTINGS["MLOPS_AZURE_CLIENT_ID"],
    }
    # MLflow and azure-identity inside the job sign in as that user-assigned identity too
    assert body["environmentVariables"] == {
        "DEFAULT_IDENTITY_CLIENT_ID": AZURE_SETTINGS["MLOPS_AZURE_CLIENT_ID"],
        "AZURE_CLIENT_ID": AZURE_SETTINGS["MLOPS_AZURE_CLIENT_ID"],
    }
    assert body["tags"] == {
        "mlops.request": "req-1",
        "mlops.run_id": "train-0123456789abcdef",
        "mlops.dataset_version": "ds-0123456789abcdef",
        "mlops.champion": "mlops-model:3",
    }


def test_a_first_model_trains_without_a_champion(azure) -> None:
    from azure.ai.ml.entities._job.to_rest_functions import to_rest_job_object

    command = _command(azure, champion=None)
    command._to_job()._validate()
    body = to_rest_job_object(command).as_dict()["properties"]
    assert "champion" not in body["inputs"] and "--champion" not in body["command"]


def test_the_training_cli_accepts_the_jobs_command(azure) -> None:
    import re

    from shared.training.__main__ import _parser

    command = _command(azure)._to_job().command
    bound = re.sub(r"\$\{\{(inputs|outputs)\.(\w+)\}\}", r"/mnt/\2", command).split()
    assert bound[:3] == ["python", "-m", "shared.training"]
    args = _parser("run").parse_args(bound[3:])  # exits (SystemExit) on an argument the CLI does not know
    assert (str(args.manifest), str(args.data_dir), str(args.config)) == (
        "/mnt/manifest",
        "/mnt/data",
        "/mnt/config",
    )
    assert (str(args.output), str(args.champion), args.run_id) == (
        "/mnt/output",
        "/mnt/champion",
        "train-0123456789abcdef",
    )


def test_the_job_manifest_is_relative_to_the_mounted_folder() -> None:
    folder, manifest = job_manifest(MANIFEST)
    assert folder == "files"
    assert [f["path"] for f in manifest["files"]] == ["aa.csv", "bb.parquet"]
    assert [f["sha256"] for f in manifest["files"]] == ["aa", "bb"]  # what the training verifies
    assert manifest["id"] == MANIFEST["id"] and manifest["schema"] == MANIFEST["schema"]


def test_a_manifest_whose_files_share_no_folder_is_refused() -> None:
    scattered = {
        **MANIFEST,
        "files": [{"path": "a.csv", "sha256": "aa"}, {"path": "x/b.csv", "sha256": "bb"}],
    }
    with pytest.raises(ValueError, match="common folder"):
        job_manifest(scattered)


def test_the_registered_model_is_an_mlflow_model_from_the_job_output() -> None:
    from azure.ai.ml import load_model
    from azure.ai.ml.entities import Model

    model = Model(
        name="mlops-model",
        type="mlflow_model",
        path=model_uri("train-1"),
        tags={"mlops.run_id": "train-1"},
        properties={"mlops.run_id": "train-1"},
    )
    properties = model._to_rest_object().as_dict()["properties"]
    assert properties["modelType"] == "mlflow_model"
    assert properties["modelUri"] == "azureml://jobs/train-1/outputs/output/paths/model"
    yaml = io.StringIO()
    model.dump(yaml)
    assert (
        load_model(io.StringIO(yaml.getvalue())).path == "azureml://jobs/train-1/outputs/output/paths/model"
    )


def test_the_deployment_serves_the_registered_model_on_the_configured_instances() -> None:
    from azure.ai.ml import load_online_deployment

    model = ModelVersion("mlops-model", "4", {}, "")
    deployment = deployment_entity("mlops-endpoint", "model-v4", model, "Standard_DS3_v2", 2)
    rest = deployment._to_rest_object(location="westeurope").as_dict()
    assert rest["properties"]["model"] == "azureml:mlops-model:4"
    assert rest["properties"]["instanceType"] == "Standard_DS3_v2"
    assert rest["properties"]["endpointComputeType"] == "Managed"
    assert rest["sku"]["capacity"] == 2
    yaml = io.StringIO()
    deployment.dump(yaml)
    reloaded = load_online_deployment(io.StringIO(yaml.getvalue()))
    assert (reloaded.name, reloaded.endpoint_name, reloaded.instance_count) == (
        "model-v4",
        "mlops-endpoint",
        2,
    )


def test_every_deployment_collects_its_inputs_and_outputs_where_the_checks_read() -> None:
    from azure.ai.ml import load_online_deployment

    model = ModelVersion("mlops-model", "4", {}, "")
    deployment = deployment_entity(
        "mlops-endpoint", "model-v4", model, "Standard_DS3_v2", 1, "mlopsinference"
    )
    rest = deployment._to_rest_object(location="westeurope").as_dict()["properties"]["dataCollector"]
    assert rest["rollingRate"].lower() == "hour"
    assert set(rest["collections"]) == {"model_inputs", "model_outputs"}
    for collection in rest["collections"].values():
        assert collection["dataCollectionMode"].lower() == "enabled" and collection["samplingRate"] == 1.0
    collector = deployment_entity(
        "mlops-endpoint", "model-v4", model, "Standard_DS3_v2", 1, "mlopsinference"
    ).data_collector
    for name, collection in collector.collections.items():
        # the path the drift and quality checks list: shared.domain.capture's folder of this deployment
        assert collection.data.path == (
            f"azureml://datastores/mlopsinference/paths/modelDataCollector/mlops-endpoint/model-v4/{name}"
        )
        assert collection.data.name == f"mlops-endpoint-model-v4-{name}" and collection.data.version == "1"
    yaml = io.StringIO()
    deployment_entity("mlops-endpoint", "model-v4", model, "Standard_DS3_v2", 1, "mlopsinference").dump(yaml)
    reloaded = load_online_deployment(io.StringIO(yaml.getvalue()))  # the SDK's own schema accepts it
    assert set(reloaded.data_collector.collections) == {"model_inputs", "model_outputs"}


def test_the_endpoint_uses_key_auth_and_carries_traffic() -> None:
    endpoint = endpoint_entity("mlops-endpoint")
    endpoint.traffic = {"model-v4": 100}
    rest = endpoint._to_rest_online_endpoint(location="westeurope").as_dict()
    assert rest["properties"]["authMode"] == "Key"
    assert rest["properties"]["traffic"] == {"model-v4": 100}


def test_the_environment_is_built_from_the_training_requirements(azure) -> None:
    from azure.ai.ml import load_environment

    environment = TrainingEnvironment(lambda: None, azure).entity()  # type: ignore[arg-type, return-value]
    pip = environment.conda_file["dependencies"][-1]["pip"]
    assert "mlflow>=2.16,<4" in pip and "azureml-mlflow>=1.57" in pip
    assert not [line for line in pip if "#" in line or not line]
    assert environment.image == azure.environment_image
    yaml = io.StringIO()
    environment.dump(yaml)
    assert load_environment(io.StringIO(yaml.getvalue())).image == azure.environment_image


def test_the_environment_version_changes_with_its_content(azure) -> None:
    from dataclasses import replace

    same = TrainingEnvironment(lambda: None, azure).entity().version  # type: ignore[arg-type, return-value]
    again = TrainingEnvironment(lambda: None, azure).entity().version  # type: ignore[arg-type, return-value]
    other_image = replace(
        azure, environment_image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py311-cpu-inference:latest"
    )
    moved = TrainingEnvironment(lambda: None, other_image).entity().version  # type: ignore[arg-type, return-value]
    assert same == again != moved


def test_conda_specification_drops_comments() -> None:
    spec = conda_specification("# header\nscikit-learn>=1.4  # why\n\npandas\n")
    assert spec["dependencies"] == ["python=3.11", "pip", {"pip": ["scikit-learn>=1.4", "pandas"]}]
    assert TRAINING_REQUIREMENTS.is_file()


@pytest.mark.parametrize(
    ("value", "existing"),
    [("mlops-training", False), ("my-env:3", True), ("my-env@latest", True), ("azureml:my-env:3", True)],
)
def test_environment_references_name_existing_environments(value: str, existing: bool) -> None:
    assert is_environment_reference(value) is existing


def test_the_code_snapshot_is_the_training_package_only(tmp_path: Path) -> None:
    staged = stage_training_code(tmp_path)
    files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert {"shared/__init__.py", "shared/training/__main__.py", "shared/training/requirements.txt"} <= files
    assert not [f for f in files if not f.startswith("shared/training/") and f != "shared/__init__.py"]
    assert not [f for f in files if "__pycache__" in f]
    assert len(files) == len(training_code_files())
