"""The team's own training code: where it is, how to run it, in which environment (the training contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from shared.config.declare import STRIPPED, ConfigError, Parser, setting

BUILT_IN_COMMAND = "{python} -m shared.training.builtin --train {train} --model {model} --params {params}"


def _folder(name: str, text: str) -> Path | None:
    return Path(text).expanduser().resolve() if text.strip() else None


FOLDER = Parser("path; empty: the built-in trainer", _folder)


@dataclass(frozen=True)
class TrainingCodeSettings:
    title: ClassVar[str] = "Training code (yours, or the built-in trainer)"

    code: Path | None = setting(
        "MLOPS_TRAINING_CODE",
        "",
        FOLDER,
        "Folder of your training project; empty: the built-in scikit-learn trainer (`MLOPS_ESTIMATOR`).",
    )
    command: str = setting(
        "MLOPS_TRAINING_COMMAND",
        "",
        STRIPPED,
        "Command run in that folder: `{train}` is a Parquet file of the training rows (features and target; "
        "never the holdout), `{model}` an empty folder where it must save an MLflow model, `{params}` a JSON "
        "file of `MLOPS_ESTIMATOR_PARAMS`, `{python}` the environment's interpreter. Required with "
        "`MLOPS_TRAINING_CODE`.",
    )
    environment: str = setting(
        "MLOPS_TRAINING_ENVIRONMENT",
        "",
        STRIPPED,
        "Your project's environment file (pip requirements or conda YAML), relative to the code folder; "
        "empty: the platform's own environment.",
    )

    @property
    def built_in(self) -> bool:
        return self.code is None

    def job_config(self) -> dict:
        """What the job needs to run the command (plain JSON)."""
        return {
            "code": None if self.code is None else str(self.code),
            "command": self.command or BUILT_IN_COMMAND,
            "environment": self.environment or None,
        }


PLACEHOLDERS = ("train", "model", "params", "python")
REQUIRED_PLACEHOLDERS = ("train", "model")


def command_problems(command: str) -> list[str]:
    """What is wrong with a training command's placeholders: `{train}` and `{model}` are required, any other
    `{name}` must be one of PLACEHOLDERS (braces that name nothing, `{}` or `{{`, are left alone)."""
    import string

    try:
        named = {field for _, field, _, _ in string.Formatter().parse(command) if field}
    except ValueError as error:
        return [f"MLOPS_TRAINING_COMMAND is not a valid template: {error}"]
    problems = [
        f"MLOPS_TRAINING_COMMAND has an unknown placeholder {{{name}}} (known: "
        + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
        + ")"
        for name in sorted(named - set(PLACEHOLDERS))
    ]
    problems += [
        f"MLOPS_TRAINING_COMMAND must name {{{name}}}" for name in REQUIRED_PLACEHOLDERS if name not in named
    ]
    return problems


def check_training_code(raw: Mapping[str, str], defaults: Mapping[str, str]) -> None:
    """The contract's settings together: a command needs a code folder and the reverse, the environment file is
    a path inside the folder, the command's placeholders are known. Whether the folder exists is checked when a
    run starts (the app must start, and say why a run cannot)."""
    code = raw.get("MLOPS_TRAINING_CODE", "").strip()
    command = raw.get("MLOPS_TRAINING_COMMAND", "").strip()
    environment = raw.get("MLOPS_TRAINING_ENVIRONMENT", "").strip()
    problems = []
    if code and not command:
        problems.append("MLOPS_TRAINING_CODE is set: MLOPS_TRAINING_COMMAND says how to run it")
    if not code and (command or environment):
        problems.append(
            "MLOPS_TRAINING_COMMAND and MLOPS_TRAINING_ENVIRONMENT belong to MLOPS_TRAINING_CODE, which is empty"
        )
    if command:
        problems += command_problems(command)
    if environment and (Path(environment).is_absolute() or ".." in Path(environment).parts):
        problems.append(
            f"MLOPS_TRAINING_ENVIRONMENT must be a path inside the code folder, not {environment!r}"
        )
    if problems:
        raise ConfigError("; ".join(problems))
