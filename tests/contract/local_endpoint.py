"""The local endpoint for the contract tests: a real router, real scoring processes, a small real model.

The platform's own doings are done for real: a deployment "becomes" Succeeded by loading its model, Failed
by losing its scoring process, and it "answered" requests by answering them (the model waits the latency
asked for, so the router measures it).
"""

from __future__ import annotations

import math
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from shared.adapters.local.endpoint import LocalEndpoint
from shared.host.endpoint.router import Router
from shared.ports import ModelVersion

READY_TIMEOUT_SECONDS = 60.0
CLIENTS = 10

MODEL_CODE = """
import time

import mlflow


class Model(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        if "delay_ms" in model_input:
            time.sleep(float(model_input["delay_ms"].max()) / 1000)
        return [float(x) for x in model_input["x"]]  # no "x" column: a KeyError, answered 500


mlflow.models.set_model(Model())
"""


def save_model(folder: Path) -> Path:
    import mlflow.pyfunc

    code = folder.parent / f"{folder.name}.py"
    code.write_text(MODEL_CODE)
    mlflow.pyfunc.save_model(str(folder), python_model=str(code), pip_requirements=["mlflow"])
    return folder


class LocalEndpointWorld:
    def __init__(self, name: str, home: Path, model_dir: Path, version: ModelVersion) -> None:
        self.router = Router(name, home, "127.0.0.1", 0).start()
        self.endpoints = LocalEndpoint(self.router.url)
        # The contract's model version, deployable here: its source is a model folder.
        self.model = ModelVersion(version.name, version.version, dict(version.tags), str(model_dir))

    def stop(self) -> None:
        self.router.stop()

    def deployment_becomes(self, name: str, state: str) -> None:
        if state == "Failed":  # the way a local deployment fails by itself: its process dies
            os.kill(self._pid(name), signal.SIGKILL)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while (observed := self.endpoints.deployment(name)) is None or observed.state != state:
            assert observed is None or observed.state == "Creating", f"{name} became {observed}"
            assert time.monotonic() < deadline, f"{name} not {state} after {READY_TIMEOUT_SECONDS} s"
            time.sleep(0.1)

    def deployment_answered(self, name: str, ok: int, errors: int, p95_ms: float) -> tuple[float, float]:
        """Send `ok` requests the model answers after `p95_ms` and `errors` it fails, to `name` by header.

        Returns the range the router's p95 must fall in: the model's wait at least, and at most the 95th
        percentile of the clients' round trips (the router's time is within each), one 2 % bin above.
        """
        answering = {"input_data": {"columns": ["x", "delay_ms"], "data": [[1, p95_ms]]}}
        failing = {"input_data": {"columns": ["y"], "data": [[1]]}}
        url, header = f"{self.router.url}/score", {"azureml-model-deployment": name}

        def send(payload: dict) -> tuple[int, float]:
            started = time.perf_counter()
            status = requests.post(url, json=payload, headers=header, timeout=30).status_code
            return status, (time.perf_counter() - started) * 1000

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(send, [answering] * ok + [failing] * errors))
        statuses = [status for status, _ in answers]
        assert statuses.count(200) == ok and statuses.count(500) == errors, statuses
        round_trips = sorted(ms for _, ms in answers)
        return p95_ms, round_trips[math.ceil(0.95 * len(round_trips)) - 1] * 1.02

    def _pid(self, name: str) -> int:
        response = requests.get(f"{self.router.url}/admin/deployments/{name}", timeout=10)
        response.raise_for_status()
        return int(response.json()["pid"])
