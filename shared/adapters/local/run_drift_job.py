"""The local stand-in for the drift check's Azure ML job: run `python -m shared.drift_job` on the job's spec,
then announce its end to the local host's workspace topic, from the experiment the training runs use (the
routing table's run routes deliver it to `on_run_completed`, as in Azure)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from shared.adapters.local.announce import announce
from shared.adapters.local.paths import PROJECT_ROOT
from shared.config import Settings, experiment_name

log = logging.getLogger("mlops.run_drift_job")


def main(folder: Path) -> int:
    settings = Settings.from_env()
    job = json.loads((folder / "job.json").read_text())
    _status(folder, "Running")
    status = "Failed"
    try:
        command = [
            sys.executable,
            "-m",
            "shared.drift_job",
            "--job",
            str(folder / "job.json"),
            "--output",
            str(folder / "outputs"),
        ]
        if job.get("champion_dir"):
            command += ["--champion", job["champion_dir"]]
        code = subprocess.call(command, cwd=PROJECT_ROOT)
        status = "Completed" if code == 0 else "Failed"
    finally:
        _status(folder, status)
        model = f"{job['model']['name']}:{job['model']['version']}"
        tags = {"mlops.kind": "drift_check", "mlops.check_id": job["check_id"], "mlops.model": model}
        announce(job["check_id"], status, settings, experiment_name(settings.raw), tags, {})
    return 0 if status == "Completed" else 1


def _status(folder: Path, status: str) -> None:
    (folder / "status.json").write_text(json.dumps({"status": status}))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(Path(sys.argv[1])))
