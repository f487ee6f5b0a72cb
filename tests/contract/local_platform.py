"""The local backend's training jobs and model registry, with what the platform does by itself made real.

A run really runs: `LocalTrainingJobs` starts `python -m shared.adapters.local.run_job`, which fetches the
dataset from Azurite and runs `python -m shared.training` on it. A run that must fail is given a data set
without its target column, which the training entry point rejects. The run announces its end to the local
host's workspace topic; here a small HTTP sink stands in for the host and records what arrives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.azure.storage import AzureBlobStore
from shared.adapters.local.jobs import LocalTrainingJobs
from shared.adapters.local.paths import mlflow_uri, run_dir
from shared.adapters.local.registry import MlflowRegistry
from shared.config import Settings
from shared.domain.messages import RUN_COMPLETED, RUN_STATUS_CHANGED
from shared.ports import RunResults, TrainingJob

RUN_SECONDS = 120  # a run takes a few seconds; the limit only bounds a hung one on a busy machine
GOOD = b"x1,x2,target\n" + b"".join(f"{i},{(i * 7) % 5},{2.0 * i + 1}\n".encode() for i in range(30))
NO_TARGET = b"x1,x2\n" + b"".join(f"{i},{(i * 7) % 5}\n".encode() for i in range(30))


class EventSink:
    """Stands in for the local host's topic endpoints: accepts every event and records it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with sink._arrived:
                    sink.events.extend(body if isinstance(body, list) else [body])
                    sink._arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test's output is for failures

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, event_type: str, run_id: str, timeout: float = RUN_SECONDS) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next(
                (e for e in self.events if e["eventType"] == event_type and e["data"]["runId"] == run_id),
                None,
            )

        with self._arrived:
            if not self._arrived.wait_for(found, timeout):
                raise AssertionError(
                    f"no {event_type} for {run_id} within {timeout} s; events: {self.events}"
                )
            event = found()
            assert event is not None
            return event

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class LocalPlatform:
    """The contract's controls over the local adapters: jobs that really run, MLflow that really registers.

    A submitted run is Queued until its job process has started and says Running, about 0.1 s later: the
    contract's "waiting to run" is read well within that.
    """

    def __init__(
        self, settings: Settings, sink: EventSink, trained: Callable[[], RunResults] | None = None
    ) -> None:
        self.settings = settings
        self.jobs = LocalTrainingJobs(settings)
        self.registry = MlflowRegistry(settings)
        self._sink = sink
        self._trained = trained
        self._blobs = AzureBlobStore.from_connection_string(settings.storage.connection_string)
        self._blobs.ensure_containers([settings.containers.datasets])

    def job(self, run_id: str = "train-1", fails: bool = False) -> TrainingJob:
        """A job on a tiny data set in storage; one without the target column if it is to fail."""
        data = NO_TARGET if fails else GOOD
        sha = hashlib.sha256(data).hexdigest()
        path = f"files/{sha}.csv"
        self._blobs.write(self.settings.containers.datasets, path, data)
        manifest = {
            "id": f"ds-{sha[:16]}",
            "files": [{"name": "part.csv", "sha256": sha, "rows": 30, "path": path}],
            "rows": 30,
        }
        return TrainingJob(run_id, manifest["id"], manifest, self.settings.training.as_job_config(), None)

    def job_finishes(self, run_id: str) -> RunResults:
        """Wait for the run's RunCompleted; return what it left: its evaluation, its model in MLflow."""
        self._sink.wait_for(RUN_COMPLETED, run_id)
        outputs = run_dir(self.settings.home, run_id) / "outputs"
        evaluation = json.loads((outputs / "evaluation.json").read_text())
        assert evaluation["run_id"] == run_id and evaluation["challenger"]  # the run scored its model
        return RunResults(run_id, evaluation, _tracked_model(self.settings.home, run_id))

    def job_fails(self, run_id: str) -> None:
        event = self._sink.wait_for(RUN_STATUS_CHANGED, run_id)
        assert event["data"]["runStatus"] == "Failed"
        log = (run_dir(self.settings.home, run_id) / "job.log").read_text()
        assert "training: error: target column 'target' is not in the data" in log  # failed for its data
        failure = LocalTrainingJobs(self.settings).failure(run_id)
        assert failure is not None and failure["stage"] == "evaluation"
        assert "target column 'target' is not in the data" in failure["reason"]

    def jobs_created(self) -> int:
        runs = self.settings.home / "runs"
        return len(list(runs.glob("*/job.json"))) if runs.exists() else 0

    def finished(self, run_id: str) -> RunResults:
        """A finished run's results under this run id: the module's one trained model, registered anew."""
        assert self._trained is not None, "this platform was made without a finished run to register"
        trained = self._trained()
        return RunResults(run_id, trained.evaluation, trained.model_uri)

    def versions(self, name: str) -> int:
        from mlflow.tracking import MlflowClient

        uri = mlflow_uri(self.settings.home)
        return len(MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions(f"name='{name}'"))

    def close(self) -> None:
        """Stop every run still going and wait until its processes are gone."""
        self.jobs.stop_all()
        for pid_file in self.settings.home.glob("runs/*/pid"):
            _wait_gone(int(pid_file.read_text()))
        self._blobs.close()


def _tracked_model(home: Path, run_id: str) -> str:
    """The model the run logged to MLflow, looked up by the run's tag, and present on disk."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri(home))
    experiments = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(experiments, filter_string=f"tags.`mlops.run_id` = '{run_id}'")
    model_uri = run.info.artifact_uri.rstrip("/") + "/model"
    assert (Path(model_uri.removeprefix("file://")) / "MLmodel").is_file()
    return model_uri


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Reap the job process if it is ours, then wait until its process group (the training too) is empty."""
    with contextlib.suppress(ChildProcessError):  # reaped already, by the adapter's liveness check
        os.waitpid(pid, 0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"job process group {pid} still running {timeout} s after SIGTERM")


@contextlib.contextmanager
def local_settings(home: Path, connection_string: str, sink: EventSink, container: str) -> Iterator[Settings]:
    """Settings for the local backend, also in the environment: the job processes read them from there."""
    env = {
        "MLOPS_BACKEND": "local",
        "MLOPS_HOME": str(home),
        "MLOPS_STORAGE_CONNECTION_STRING": connection_string,
        "MLOPS_HOST_URL": sink.url,
        "MLOPS_CONTAINER_DATASETS": container,
        "MLOPS_TASK": "regression",
        "MLOPS_TARGET_COLUMN": "target",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        yield Settings.from_env()
