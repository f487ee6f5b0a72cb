"""The training contract's settings: checked together, with errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import ConfigError, Settings
from shared.config.training_code import BUILT_IN_COMMAND, command_problems


def test_unset_means_the_built_in_trainer_behind_the_same_contract() -> None:
    code = Settings.from_env({}).training_code
    assert code.built_in and code.job_config() == {
        "code": None,
        "command": BUILT_IN_COMMAND,
        "environment": None,
    }
    assert command_problems(BUILT_IN_COMMAND) == []


def test_a_project_with_its_command_and_environment(tmp_path: Path) -> None:
    env = {
        "MLOPS_TRAINING_CODE": str(tmp_path),
        "MLOPS_TRAINING_COMMAND": " python train.py {train} {model} ",
        "MLOPS_TRAINING_ENVIRONMENT": "env/requirements.txt",
    }
    code = Settings.from_env(env).training_code
    assert (code.code, code.command, code.environment) == (
        tmp_path.resolve(),
        "python train.py {train} {model}",
        "env/requirements.txt",
    )
    assert not code.built_in


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLOPS_TRAINING_CODE": "/x"}, "MLOPS_TRAINING_COMMAND says how to run it"),
        ({"MLOPS_TRAINING_COMMAND": "python t.py {train} {model}"}, "which is empty"),
        ({"MLOPS_TRAINING_ENVIRONMENT": "r.txt"}, "which is empty"),
        ({"MLOPS_TRAINING_CODE": "/x", "MLOPS_TRAINING_COMMAND": "python t.py {model}"}, "must name {train}"),
        (
            {"MLOPS_TRAINING_CODE": "/x", "MLOPS_TRAINING_COMMAND": "python t.py {train} {model} {data}"},
            "unknown placeholder {data}",
        ),
        (
            {"MLOPS_TRAINING_CODE": "/x", "MLOPS_TRAINING_COMMAND": "python {train} {model"},
            "not a valid template",
        ),
        (
            {
                "MLOPS_TRAINING_CODE": "/x",
                "MLOPS_TRAINING_COMMAND": "python t.py {train} {model}",
                "MLOPS_TRAINING_ENVIRONMENT": "../outside.txt",
            },
            "must be a path inside the code folder",
        ),
    ],
)
def test_a_broken_contract_is_refused_with_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        Settings.from_env(env)
