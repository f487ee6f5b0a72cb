"""A team's own training code, run locally as the contract says: the training rows as Parquet, their command in
their environment (built once), our evaluation of whatever model they saved; and every way it can go wrong
fails the run with the stage, the reason and the log's tail. Real processes and a real virtual environment; no
storage (the inputs are the files the job fetched)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from shared.adapters.local import training_command
from shared.config import Settings
from shared.state.datasets import build_manifest
from tests.builders import good_csv

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "training_projects" / "script"
COMMAND = "python train.py --train {train} --model {model}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")  # one environment cache for the module, as for a host


def _job(
    tmp_path: Path, home: Path, behaviour: str = "train", **settings: str
) -> tuple[dict, Path, Settings]:
    code = tmp_path / "project"
    shutil.copytree(PROJECT, code)
    if behaviour != "train":  # the behaviour is part of the team's code, as a bug would be
        script = code / "train.py"
        script.write_text(
            script.read_text().replace('"TEAM_BEHAVIOUR", "train"', f'"TEAM_BEHAVIOUR", "{behaviour}"')
        )
    env = {
        "MLOPS_HOME": str(home),
        "MLOPS_TRAINING_CODE": str(code),
        "MLOPS_TRAINING_COMMAND": COMMAND,
        "MLOPS_TRAINING_ENVIRONMENT": "requirements.txt",
        **settings,
    }
    config = Settings.from_env(env)
    folder = tmp_path / "run"
    inputs = folder / "inputs"
    (inputs / "files").mkdir(parents=True)
    data = good_csv(rows=200)
    (inputs / "files" / "a.csv").write_bytes(data)
    files = [
        {"name": "a.csv", "sha256": hashlib.sha256(data).hexdigest(), "path": "files/a.csv", "rows": 200}
    ]
    manifest = build_manifest(files, {"x1": "number", "x2": "number", "target": "number"})
    job_config = {**config.training.as_job_config(), "code": config.training_code.job_config()}
    (inputs / "manifest.json").write_text(json.dumps(manifest))
    (inputs / "config.json").write_text(json.dumps(job_config))
    job = {"run_id": "train-team-1", "config": job_config, "champion_dir": None}
    return job, folder, config


def _run(job: dict, folder: Path, settings: Settings) -> training_command.RunFailed | None:
    try:
        training_command.run(job, folder, settings, "mlops")
    except training_command.RunFailed as failure:
        return failure
    return None


def test_the_teams_command_trains_on_the_training_rows_and_our_evaluation_decides(
    tmp_path: Path, home: Path
) -> None:
    job, folder, settings = _job(tmp_path, home)

    assert _run(job, folder, settings) is None

    evaluation = json.loads((folder / "outputs" / "evaluation.json").read_text())
    seen = json.loads((folder / "work" / "model" / "seen.json").read_text())
    assert seen["rows"] == evaluation["rows"]["train"] < 200  # the holdout rows were never in its file
    assert evaluation["rows"]["holdout"] == 200 - seen["rows"]
    assert set(seen["columns"]) == {"x1", "x2", "target"}
    assert "MLOPS_TARGET_COLUMN" in seen["environment"]
    assert not [name for name in seen["environment"] if "STORAGE" in name or "CONNECTION" in name]
    assert evaluation["challenger"]["rmse"] < 1.0  # target = 2 * x1 + 1: the team's model is good
    assert evaluation["code"]["built_in"] is False and evaluation["estimator"] is None
    assert evaluation["code"]["environment_sha256"] is not None
    assert len(evaluation["model_sha256"]) == 64
    assert (folder / "outputs" / "model" / "MLmodel").is_file()  # what gets registered
    assert len(evaluation["smoke"]["predictions"]) > 0


def test_the_environment_is_built_once_and_reused(tmp_path: Path, home: Path) -> None:
    job, folder, settings = _job(tmp_path, home)
    assert _run(job, folder, settings) is None
    assert len([p for p in (home / "envs").iterdir() if p.is_dir()]) == 1  # the first test's, reused


@pytest.mark.parametrize(
    ("behaviour", "stage", "reason", "in_log"),
    [
        ("crash", "command", "the training command exited with 3", "KeyError 'x9'"),
        ("no-model", "model", "saved no model", ""),
        ("wrong-columns", "evaluation", "cannot score the holdout's columns", "not_in_the_data"),
    ],
)
def test_a_command_that_goes_wrong_fails_the_run_with_why(
    tmp_path: Path, home: Path, behaviour: str, stage: str, reason: str, in_log: str
) -> None:
    job, folder, settings = _job(tmp_path, home, behaviour)

    failure = _run(job, folder, settings)

    assert failure is not None and (failure.stage, reason in failure.reason) == (stage, True), failure
    assert in_log in failure.log_tail or in_log in failure.reason
    assert not (folder / "outputs" / "evaluation.json").exists()


def test_a_command_past_the_run_timeout_is_stopped(tmp_path: Path, home: Path) -> None:
    job, folder, settings = _job(tmp_path, home, "hang", MLOPS_RUN_TIMEOUT_SECONDS="20")

    failure = _run(job, folder, settings)

    assert failure is not None and failure.stage == "command"
    assert "ran past MLOPS_RUN_TIMEOUT_SECONDS (20 s)" in failure.reason


def test_an_environment_that_does_not_install_fails_the_run(tmp_path: Path, home: Path) -> None:
    job, folder, settings = _job(tmp_path, home)
    (Path(job["config"]["code"]["code"]) / "requirements.txt").write_text("./no-such-package-here\n")

    failure = _run(job, folder, settings)

    assert failure is not None and failure.stage == "environment"
    assert "could not be built" in failure.reason and "no-such-package-here" in failure.log_tail
