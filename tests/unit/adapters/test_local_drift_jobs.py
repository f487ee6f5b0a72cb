"""The local drift check job's cancel: the job's processes stop and its status says Canceled, as Azure ML's
does; an ended or unknown job is left as it is."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

from shared.adapters.local.drift_jobs import LocalDriftJobs
from shared.config import Settings
from tests.fakes import TEST_SETTINGS


def _jobs(tmp_path: Path) -> LocalDriftJobs:
    return LocalDriftJobs(Settings.from_env({**TEST_SETTINGS, "MLOPS_HOME": str(tmp_path)}))


def _running_job(tmp_path: Path, check_id: str) -> subprocess.Popen[bytes]:
    """A job folder as `submit` leaves it, its process group a shell and a child of it, as the wrapper and
    `python -m shared.drift_job` are."""
    folder = tmp_path / "runs" / check_id
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"status": "Running"}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.call([sys.executable, '-c', 'import time; time.sleep(60)'])",
        ],
        start_new_session=True,
    )
    (folder / "pid").write_text(str(process.pid))
    return process


def _children_once_started(pid: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    while not (children := psutil.Process(pid).children(recursive=True)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert children, "the job's child process never started"
    return children


def test_cancel_stops_the_jobs_processes_and_says_canceled(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    process = _running_job(tmp_path, "drift-1")
    children = _children_once_started(process.pid)

    jobs.cancel("drift-1")

    assert process.poll() is not None
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)
    assert jobs.status("drift-1") == "Canceled"


def test_cancel_leaves_an_ended_or_unknown_job(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    folder = tmp_path / "runs" / "drift-2"
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"status": "Completed"}))

    jobs.cancel("drift-2")
    jobs.cancel("drift-unknown")

    assert jobs.status("drift-2") == "Completed"
    assert jobs.status("drift-unknown") == "NotFound"
