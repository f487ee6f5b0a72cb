"""A run of a team's code in Azure ML: one pipeline job of our preparation, their step and our evaluation, built
and checked by the SDK's own schemas without a network."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shared.adapters.azure.jobs import training_command
from shared.adapters.azure.pipeline import project_environment_entity, team_command, training_pipeline
from shared.config import Settings
from shared.ports import ModelVersion, TrainingJob
from tests.contract.azure_stub import AZURE_SETTINGS

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")
ROOT = Path(__file__).resolve().parents[3]
PROJECT = ROOT / "tests" / "fixtures" / "training_projects" / "script"
MANIFEST = {
    "id": "ds-0123456789abcdef",
    "files": [{"name": "a.csv", "sha256": "aa", "rows": 10, "path": "files/aa.csv"}],
    "schema": {"x1": "number"},
    "rows": 10,
}
CHAMPION = ModelVersion("mlops-model", "3", {}, "azureml://jobs/train-old/outputs/output/paths/model")
COMMAND = "python train.py --train {train} --model {model} --params {params}"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.from_env(
        {
            **AZURE_SETTINGS,
            "MLOPS_TRAINING_CODE": str(PROJECT),
            "MLOPS_TRAINING_COMMAND": COMMAND,
            "MLOPS_TRAINING_ENVIRONMENT": "requirements.txt",
        }
    )


def _pipeline(settings: Settings, champion: ModelVersion | None = CHAMPION):
    config = {**settings.training.as_job_config(), "code": settings.training_code.job_config()}
    job = TrainingJob("train-team-1", MANIFEST["id"], MANIFEST, config, champion, {"mlops.request": "req-1"})
    azure = settings.azure
    built = training_command(
        job, azure, code=str(ROOT), environment="azureml:mlops-training:1", data_folder="files"
    )._to_job()
    return training_pipeline(
        job,
        azure,
        inputs=dict(built.inputs),
        output=built.outputs["output"],
        platform_code=str(ROOT),
        platform_environment="azureml:mlops-training:1",
        project_environment="azureml:mlops-training-project:abc",
        tags=dict(built.tags),
    )


def test_the_pipeline_passes_the_sdk_schema_and_round_trips_as_yaml(settings: Settings) -> None:
    from azure.ai.ml import load_job

    job = _pipeline(settings)
    result = job._validate()
    assert result.passed, result.error_messages
    yaml = io.StringIO()
    job.dump(yaml)
    reloaded = load_job(io.StringIO(yaml.getvalue()))  # the SDK's marshmallow schema, as `az ml job create`
    assert reloaded.name == "train-team-1" and reloaded.experiment_name == "mlops"
    assert set(reloaded.jobs) == {"prepare", "train", "evaluate"}


def _steps(body: dict) -> dict[str, dict]:
    """Each step with its component (the SDK sends it inline until `create_or_update` registers it)."""
    return {
        name: {**step, "component": step["componentId"]._to_dict()} for name, step in body["jobs"].items()
    }


def test_their_step_runs_their_command_in_their_environment_between_ours(settings: Settings) -> None:
    body = _pipeline(settings)._to_rest_object().as_dict()["properties"]
    assert (body["jobType"], body["experimentName"]) == ("Pipeline", "mlops")
    steps = _steps(body)
    assert list(steps) == ["prepare", "train", "evaluate"]
    train = steps["train"]
    assert train["component"]["command"] == (
        "python train.py --train ${{inputs.work}}/train.parquet --model ${{outputs.model}} "
        "--params ${{inputs.work}}/params.json"
    )
    assert train["component"]["environment"] == "azureml:mlops-training-project:abc"
    assert Path(train["component"]["code"]) == PROJECT  # their folder, uploaded as their code asset
    assert train["inputs"]["work"]["value"] == "${{parent.jobs.prepare.outputs.work}}"
    assert train["environment_variables"]["MLOPS_TARGET_COLUMN"] == "target"
    assert not [name for name in train["environment_variables"] if "STORAGE" in name or "KEY" in name]
    for ours in ("prepare", "evaluate"):
        assert steps[ours]["component"]["environment"] == "azureml:mlops-training:1"
        assert Path(steps[ours]["component"]["code"]) == ROOT
    evaluate = steps["evaluate"]
    command = evaluate["component"]["command"]
    assert "pip install --quiet -r ${{inputs.model}}/requirements.txt" in command
    assert "python -m shared.training evaluate" in command and "--champion ${{inputs.champion}}" in command
    assert evaluate["inputs"]["model"]["value"] == "${{parent.jobs.train.outputs.model}}"
    store = "azureml://datastores/mlopsdatasets/paths"
    assert evaluate["outputs"]["output"]["uri"] == f"{store}/runs/train-team-1/output/"
    assert body["inputs"]["manifest"]["uri"] == f"{store}/runs/train-team-1/manifest.json"
    assert body["tags"]["mlops.run_id"] == "train-team-1"


def test_the_cli_accepts_every_step_of_ours(settings: Settings) -> None:
    import re

    from shared.training.__main__ import _parser

    steps = _steps(_pipeline(settings)._to_rest_object().as_dict()["properties"])
    for name, stage in (("prepare", "prepare"), ("evaluate", "evaluate")):
        command = steps[name]["component"]["command"].split(" && ")[-1]
        bound = re.sub(r"\$\{\{(inputs|outputs)\.(\w+)\}\}", r"/mnt/\2", command).split()
        assert bound[:4] == ["python", "-m", "shared.training", stage]
        _parser(stage).parse_args(bound[4:])  # exits (SystemExit) on an argument the CLI does not know


def test_a_first_model_is_evaluated_without_a_champion(settings: Settings) -> None:
    steps = _steps(_pipeline(settings, champion=None)._to_rest_object().as_dict()["properties"])
    evaluate = steps["evaluate"]
    assert "--champion" not in evaluate["component"]["command"] and "champion" not in evaluate["inputs"]


def test_their_pip_requirements_become_an_environment_versioned_by_content(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "requirements.txt").write_text("lightgbm==4.5.0\n")
    first = project_environment_entity(settings.azure, tmp_path, "requirements.txt")
    assert first.conda_file["dependencies"][-1] == {"pip": ["lightgbm==4.5.0"]}
    (tmp_path / "requirements.txt").write_text("lightgbm==4.6.0\n")
    second = project_environment_entity(settings.azure, tmp_path, "requirements.txt")
    assert first.name == second.name == "mlops-training-project" and first.version != second.version
    (tmp_path / "env.yml").write_text("name: t\ndependencies:\n  - python=3.11\n  - pip:\n    - xgboost\n")
    conda = project_environment_entity(settings.azure, tmp_path, "env.yml")
    assert conda.conda_file["dependencies"][1] == {"pip": ["xgboost"]}
    assert project_environment_entity(settings.azure, tmp_path, None) is None


def test_placeholders_bind_to_the_steps_and_literal_braces_stay() -> None:
    assert team_command("{python} t.py {train} {model} --x '{{a}}'") == (
        "python t.py ${{inputs.work}}/train.parquet ${{outputs.model}} --x '{a}'"
    )
