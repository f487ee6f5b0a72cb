"""The drift check's job as a local process: `python -m shared.drift_job`, the entry point an Azure ML command
job runs, in this environment (which has the statistics libraries), its end announced as Azure ML announces a
run's (`run_drift_job`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from shared.adapters.local.jobs import folder_status, stop_process
from shared.adapters.local.paths import PROJECT_ROOT, local_path, run_dir
from shared.config import Settings
from shared.ports import DriftJob

OUTCOME = "outcome.json"  # what `python -m shared.drift_job` writes into its output folder
FAILURE = "failure.json"


class LocalDriftJobs:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def submit(self, job: DriftJob) -> None:
        folder = run_dir(self._settings.home, job.check_id)
        spec = folder / "job.json"
        if spec.exists():
            return  # submitted before: the check id is the idempotency key, as a job name is in Azure ML
        folder.mkdir(parents=True, exist_ok=True)
        champion = str(local_path(job.model.source)) if job.model.source else ""
        (folder / "status.json").write_text(json.dumps({"status": "Queued"}))
        spec.write_text(json.dumps({**asdict(job), "champion_dir": champion}, indent=1, default=str))
        env = {**os.environ, **({"TRACEPARENT": job.trace} if job.trace else {})}
        with open(folder / "job.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "shared.adapters.local.run_drift_job", str(folder)],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (folder / "pid").write_text(str(process.pid))

    def status(self, check_id: str) -> str:
        return folder_status(run_dir(self._settings.home, check_id))

    def cancel(self, check_id: str) -> None:
        """Stop the job's processes and say Canceled, as Azure ML does for a cancelled job."""
        folder = run_dir(self._settings.home, check_id)
        if folder_status(folder) not in ("Queued", "Running"):
            return
        pid = folder / "pid"
        if pid.exists():
            stop_process(int(pid.read_text()))
        (folder / "status.json").write_text(json.dumps({"status": "Canceled"}))

    def outcome(self, check_id: str) -> dict[str, Any]:
        file = self._outputs(check_id) / OUTCOME
        try:
            return json.loads(file.read_text())
        except FileNotFoundError:
            raise LookupError(f"drift check {check_id} has no outcome: {file} does not exist") from None

    def failure(self, check_id: str) -> dict[str, Any] | None:
        file = self._outputs(check_id) / FAILURE
        try:
            failure = json.loads(file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return failure if isinstance(failure, dict) else None

    def _outputs(self, check_id: str) -> Path:
        return run_dir(self._settings.home, check_id) / "outputs"
