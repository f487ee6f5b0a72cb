"""A run of a team's own training code in Azure ML: one pipeline job of three steps, as a local run does them.

    prepare   (our environment, our code)    python -m shared.training prepare ... -> work/train.parquet, params.json
    train     (their environment, their code) their command, {train} {model} {params} {python} bound to the steps
    evaluate  (our environment, our code)    python -m shared.training evaluate ... -> output/ (evaluation.json)

Their environment is built from their file (pip requirements on our base image, or their conda YAML), registered
as `<MLOPS_AZURE_ENVIRONMENT>-project:<content hash>` the first time it is needed, as ours is. The train step
sees the training rows only (the holdout is never written) and the settings as environment variables, no
credential of ours. The evaluation loads the model the step saved; the model's own requirements
(`requirements.txt` in its MLflow folder) are installed into our environment first, so a LightGBM or PyTorch
model loads where it is scored. The evaluate step writes where a command job writes (`runs/<id>/output/`), so
results are read back the same way.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from shared.adapters.azure.assets import conda_specification
from shared.config import AzureSettings
from shared.ports import TrainingJob
from shared.training.config import TrainingConfig
from shared.training.prepare import PARAMS_FILE, TRAIN_FILE, command_environment

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

OUTPUT = "output"
BINDINGS = {
    "train": "${{inputs.work}}/" + TRAIN_FILE,
    "model": "${{outputs.model}}",
    "params": "${{inputs.work}}/" + PARAMS_FILE,
    "python": "python",
}


def install_model_requirements(model_input: str) -> str:
    """A shell step installing the requirements an MLflow model folder (the job input `model_input`) lists, so a
    LightGBM or PyTorch model loads in our environment; nothing for a folder that lists none."""
    folder = "${{inputs." + model_input + "}}"
    return (
        f"if [ -f {folder}/requirements.txt ]; then "
        f"python -m pip install --quiet -r {folder}/requirements.txt; fi"
    )


def team_command(command: str) -> str:
    """The team's command with its placeholders bound to the train step's input and output."""
    return command.format(**BINDINGS)


def project_environment_entity(azure: AzureSettings, code_dir: Path, environment: str | None) -> Any:
    """Their environment as an `Environment` (not registered by this call): their conda YAML, or their pip
    requirements on our base image; versioned by content hash. None environment: ours serves their step too."""
    from azure.ai.ml.entities import Environment

    if not environment:
        return None
    text = (Path(code_dir) / environment).read_text(encoding="utf-8")
    conda = yaml.safe_load(text) if environment.endswith((".yml", ".yaml")) else conda_specification(text)
    if not isinstance(conda, dict):
        raise ValueError(f"{environment} is not a conda YAML mapping")
    content = json.dumps({"image": azure.environment_image, "conda": conda}, sort_keys=True)
    return Environment(
        name=f"{azure.environment}-project",
        version=hashlib.sha256(content.encode()).hexdigest()[:16],
        image=azure.environment_image,
        conda_file=conda,
        description=f"the training project's {environment} on the base image",
    )


class ProjectEnvironment:
    """`azureml:name:version` of the team's environment, registered the first time a run needs it."""

    def __init__(self, ml_client: Callable[[], MLClient], azure: AzureSettings) -> None:
        self._ml, self._azure = ml_client, azure
        self._resolved: dict[str, str] = {}
        self._lock = threading.Lock()

    def reference(self, code_dir: Path, environment: str | None) -> str | None:
        wanted = project_environment_entity(self._azure, code_dir, environment)
        if wanted is None:
            return None
        key = f"{wanted.name}:{wanted.version}"
        with self._lock:
            if key not in self._resolved:
                from azure.core.exceptions import ResourceNotFoundError

                environments = self._ml().environments
                try:
                    environments.get(wanted.name, wanted.version)
                except ResourceNotFoundError:
                    environments.create_or_update(wanted)
                self._resolved[key] = f"azureml:{key}"
            return self._resolved[key]


def training_pipeline(
    job: TrainingJob,
    azure: AzureSettings,
    *,
    inputs: dict[str, Any],
    output: Any,
    platform_code: str,
    platform_environment: str,
    project_environment: str | None,
    tags: dict[str, str],
) -> Any:
    """The pipeline job of one run (`azure.ai.ml.entities.PipelineJob`). `inputs`: the command job's (manifest,
    data, config, optionally champion); `output`: where the evaluation writes."""
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.dsl import pipeline
    from azure.ai.ml.entities import ManagedIdentityConfiguration

    code = job.config["code"]
    settings = TrainingConfig.from_dict(job.config)
    common = {"manifest": Input(type="uri_file"), "data": Input(type="uri_folder", mode="ro_mount")}
    common["config"] = Input(type="uri_file")
    reads = "--manifest ${{inputs.manifest}} --data-dir ${{inputs.data}} --config ${{inputs.config}}"
    identity = ManagedIdentityConfiguration(
        client_id=azure.client_id or None
    )  # reads and writes the datastore
    prepare = command(
        name="prepare",
        display_name="prepare: the training rows",
        inputs=common,
        outputs={"work": Output(type="uri_folder")},
        command=f"python -m shared.training prepare {reads} --output ${{{{outputs.work}}}}",
        code=platform_code,
        environment=platform_environment,
        identity=identity,
    )
    train = command(
        name="train",
        display_name="train: the project's command",
        inputs={"work": Input(type="uri_folder")},
        outputs={"model": Output(type="uri_folder")},
        command=team_command(code["command"]),
        code=code["code"],
        environment=project_environment or platform_environment,
        environment_variables=command_environment(settings, job.run_id),
        identity=identity,
    )
    evaluate_inputs = {**common, "model": Input(type="uri_folder")}
    evaluation = (
        f"python -m shared.training evaluate {reads} --model ${{{{inputs.model}}}} "
        f"--output ${{{{outputs.output}}}} --run-id {job.run_id}"
    )
    installs = [install_model_requirements("model")]
    if "champion" in inputs:
        evaluate_inputs["champion"] = Input(type="mlflow_model")
        evaluation += " --champion ${{inputs.champion}}"
        installs.append(install_model_requirements("champion"))  # scored on the same holdout
    evaluation = " && ".join([*installs, evaluation])
    evaluate = command(
        name="evaluate",
        display_name="evaluate: challenger and champion on one holdout",
        inputs=evaluate_inputs,
        outputs={OUTPUT: Output(type="uri_folder")},
        command=evaluation,
        code=platform_code,
        environment=platform_environment,
        identity=identity,
    )

    def steps(manifest: Any, data: Any, config: Any, champion: Any = None) -> None:
        prepared = prepare(manifest=manifest, data=data, config=config)
        trained = train(work=prepared.outputs.work)
        given = {"champion": champion} if champion is not None else {}
        scored = evaluate(manifest=manifest, data=data, config=config, model=trained.outputs.model, **given)
        scored.outputs[OUTPUT] = output

    options = {
        "name": job.run_id,
        "display_name": f"{job.run_id} on {job.dataset_version}",
        "description": "the project's training step between our preparation and our evaluation",
        "experiment_name": azure.experiment,
        "default_compute": azure.compute,
    }
    if "champion" in inputs:

        @pipeline(**options)
        def run(manifest, data, config, champion):
            steps(manifest, data, config, champion)

    else:

        @pipeline(**options)
        def run(manifest, data, config):
            steps(manifest, data, config)

    pipeline_job = run(**inputs)
    pipeline_job.name = job.run_id
    pipeline_job.tags = tags
    return pipeline_job
