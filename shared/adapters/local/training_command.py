"""A run of a team's own training code, locally, in three steps (as the Azure ML pipeline runs them):

1. `python -m shared.training prepare` (the project's environment): the training rows as Parquet, the parameters
   as JSON, the settings the command reads;
2. the team's command, in their code folder, in a virtual environment built from their environment file (once
   per content hash, `environments`), with only those settings in its environment: no storage credential, no
   holdout (it is never written);
3. `python -m shared.training evaluate`, our evaluation, in the same environment as the command (the model's
   libraries load there, and the platform's packages are in it too).

Whatever fails (the environment, the command, a timeout, no model, a model that cannot score) fails the run with
the stage, the reason and the tail of that step's log, in `outputs/failure.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shared.adapters.local import commands, environments
from shared.adapters.local.paths import PROJECT_ROOT
from shared.config import Settings

# What a command inherits from this process besides its settings: enough to run programs, not our secrets.
INHERITED = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TZ",
    "SYSTEMROOT",
    "PIP_INDEX_URL",
    "PIP_FIND_LINKS",
)


class RunFailed(Exception):
    def __init__(self, stage: str, reason: str, log_tail: str = "") -> None:
        super().__init__(reason)
        self.stage, self.reason, self.log_tail = stage, reason, log_tail

    def as_dict(self) -> dict[str, str]:
        return {"stage": self.stage, "reason": self.reason, "log_tail": self.log_tail}


def run(job: dict[str, Any], folder: Path, settings: Settings, experiment: str) -> None:
    """Prepare, train with the team's command, evaluate; raises RunFailed with the reason."""
    code = job["config"]["code"]
    code_dir = Path(code["code"])
    inputs, work, outputs = folder / "inputs", folder / "work", folder / "outputs"
    timeout = settings.runs.timeout_seconds
    started = time.monotonic()
    common = ["--manifest", str(inputs / "manifest.json"), "--data-dir", str(inputs)]
    common += ["--config", str(inputs / "config.json")]
    prepared = _training(sys.executable, "prepare", [*common, "--output", str(work)], folder, timeout)
    try:
        python = environments.ensure_environment(settings.home, code_dir, code.get("environment"), timeout)
    except environments.EnvironmentBuildError as error:
        raise RunFailed(
            "environment", f"the training environment could not be built: {error.reason}", error.log_tail
        ) from None
    model_dir = work / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    try:
        argv = commands.format_command(
            code["command"], Path(prepared["train"]), model_dir, Path(prepared["params"]), python
        )
    except commands.CommandTemplateError as error:
        raise RunFailed("command", str(error)) from None
    env = commands.command_env(
        {name: os.environ[name] for name in INHERITED if name in os.environ},
        python,
        {**prepared["environment"], "MLFLOW_TRACKING_URI": ""},
    )
    left = max(1.0, timeout - (time.monotonic() - started))
    result = commands.run_command(argv, code_dir, env, left, folder / "command.log")
    if result.timed_out:
        raise RunFailed(
            "command",
            f"the training command ran past MLOPS_RUN_TIMEOUT_SECONDS ({timeout:.0f} s)",
            result.stderr_tail,
        )
    if result.returncode != 0:
        raise RunFailed(
            "command", f"the training command exited with {result.returncode}", result.stderr_tail
        )
    if not any(model_dir.iterdir()):
        raise RunFailed(
            "model", f"the training command saved no model in {{model}} ({model_dir})", result.stderr_tail
        )
    evaluate = [*common, "--model", str(model_dir), "--output", str(outputs), "--run-id", job["run_id"]]
    evaluate += ["--code", str(code_dir)]
    if code.get("environment"):
        evaluate += ["--environment", code["environment"]]
    if job.get("champion_dir"):
        evaluate += ["--champion", job["champion_dir"]]
    left = max(1.0, timeout - (time.monotonic() - started))
    _training(python, "evaluate", evaluate, folder, left, env={**os.environ, "MLOPS_EXPERIMENT": experiment})


def _training(
    python: Path | str,
    stage: str,
    args: list[str],
    folder: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One stage of `python -m shared.training`; its summary line, or RunFailed with its error."""
    log = folder / f"{stage}.log"
    with open(log, "wb") as stderr:
        try:
            done = subprocess.run(
                [str(python), "-m", "shared.training", stage, *args],
                cwd=PROJECT_ROOT,
                env=env or dict(os.environ),
                stdout=subprocess.PIPE,
                stderr=stderr,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RunFailed(
                stage, f"{stage} ran past MLOPS_RUN_TIMEOUT_SECONDS", commands.log_tail(log)
            ) from None
    if done.returncode != 0:
        tail = commands.log_tail(log)
        errors = [line for line in tail.splitlines() if line.startswith("training: error: ")]
        reason = (
            errors[-1].removeprefix("training: error: ")
            if errors
            else f"{stage} exited with {done.returncode}"
        )
        raise RunFailed("evaluation" if stage == "evaluate" else stage, reason, tail)
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    return json.loads(lines[-1]) if lines else {}
