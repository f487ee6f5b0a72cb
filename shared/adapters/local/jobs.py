"""Training jobs as local subprocesses, running the same entry point an Azure ML command job runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shared.adapters.local.paths import PROJECT_ROOT, local_path, mlflow_uri, run_dir
from shared.config import Settings
from shared.ports import RunResults, TrainingJob

STOP_GRACE_SECONDS = 5.0
FAILURE_FILE = "failure.json"


class LocalTrainingJobs:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def submit(self, job: TrainingJob) -> None:
        folder = run_dir(self._settings.home, job.run_id)
        spec = folder / "job.json"
        if spec.exists():
            return  # submitted before: the run id is the idempotency key, as a job name is in Azure ML
        folder.mkdir(parents=True, exist_ok=True)
        champion_dir = str(local_path(job.champion.source)) if job.champion else None
        body = {**asdict(job), "champion_dir": champion_dir}
        (folder / "status.json").write_text(json.dumps({"status": "Queued"}))
        spec.write_text(json.dumps(body, indent=1, default=str))
        env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri(self._settings.home)}
        if job.trace:  # the run's trace, as an Azure ML job gets it
            env["TRACEPARENT"] = job.trace
        with open(folder / "job.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "shared.adapters.local.run_job", str(folder)],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (folder / "pid").write_text(str(process.pid))

    def status(self, run_id: str) -> str:
        return folder_status(run_dir(self._settings.home, run_id))

    def results(self, run_id: str) -> RunResults:
        outputs = run_dir(self._settings.home, run_id) / "outputs"
        try:
            evaluation = json.loads((outputs / "evaluation.json").read_text())
        except FileNotFoundError:
            # The port's "no results" (a failed or unfinished run), which callers catch, as for Azure ML.
            raise LookupError(
                f"run {run_id} has no results: {outputs / 'evaluation.json'} does not exist"
            ) from None
        run_info = outputs / "run.json"
        if run_info.exists():
            model_uri = json.loads(run_info.read_text())["artifact_uri"].rstrip("/") + "/model"
        else:
            model_uri = (outputs / "model").as_uri()
        return RunResults(run_id=run_id, evaluation=evaluation, model_uri=model_uri)

    def failure(self, run_id: str) -> dict[str, Any] | None:
        """What the run's job wrote in `outputs/failure.json` when it failed."""
        file = run_dir(self._settings.home, run_id) / "outputs" / FAILURE_FILE
        try:
            failure = json.loads(file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return failure if isinstance(failure, dict) else None

    def stop_all(self) -> None:
        """Stop every training process still running and wait until each is gone (the local host calls this
        when it shuts down): a run stopped this way is Failed to the next host, never half-alive."""
        runs = self._settings.home / "runs"
        for pid_file in runs.glob("*/pid") if runs.exists() else ():
            if process_alive(pid_file.parent):
                stop_process(int(pid_file.read_text()))


def stop_process(pid: int, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to a job's process group, SIGKILL after the grace period to whatever is left of it; returns once
    the job's process and its children are gone (reaping the job's process if it is our child)."""
    import psutil

    try:
        process = psutil.Process(pid)
        group = [process, *process.children(recursive=True)]
        os.killpg(pid, signal.SIGTERM)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return
    _, alive = psutil.wait_procs(group, timeout=grace_seconds)
    if alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        for survivor in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                survivor.kill()  # one that left the group
        psutil.wait_procs(alive, timeout=grace_seconds)


def folder_status(folder: Path) -> str:
    """A local job's status from its folder: what its process last wrote, Failed if it died without saying."""
    status_file = folder / "status.json"
    if not status_file.exists():
        return "NotFound"
    status = json.loads(status_file.read_text())["status"]
    if status in ("Queued", "Running") and not process_alive(folder):
        return "Failed"  # the process died without saying so
    return status


def process_alive(folder) -> bool:
    pid_file = folder / "pid"
    if not pid_file.exists():
        return True  # between writing the status and the pid: assume alive
    pid = int(pid_file.read_text())
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reaps our own child; others raise ChildProcessError
        return finished == 0
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
