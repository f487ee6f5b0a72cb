"""Releases against the real local endpoint: scoring processes, traffic, health, live statistics.

The registry and the training results are fakes (a model version here is a folder on disk); the endpoint
(its router, scoring processes and the `LocalEndpoint` client) and the release state machine are the real ones.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.adapters.local.endpoint import LocalEndpoint
from shared.handlers.release import advance, on_model_registered, release_id
from shared.host.endpoint.router import Router
from shared.ports import ModelVersion, RunResults
from tests.builders import production_state, release_state
from tests.fakes import FakeDeps, make_deps

pytestmark = pytest.mark.integration

MODEL = "mlops-model"
COLUMNS = ["x1", "x2"]
ROWS = [[float(i), float(i % 3)] for i in range(6)]

MODEL_CODE = """
import time
import mlflow


class Model(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        behaviour = {behaviour!r}
        if behaviour == "raise":
            raise RuntimeError("this model cannot score")
        if behaviour == "slow":
            time.sleep(0.4)
        return [2.0 * x1 + x2 + {offset} for x1, x2 in zip(model_input["x1"], model_input["x2"])]


mlflow.models.set_model(Model())
"""


def _save(folder: Path, behaviour: str, offset: float) -> Path:
    import mlflow.pyfunc

    code = folder.parent / f"{folder.name}.py"
    code.write_text(MODEL_CODE.format(behaviour=behaviour, offset=offset))
    mlflow.pyfunc.save_model(str(folder), python_model=str(code), pip_requirements=["mlflow"])
    return folder


def _expected(offset: float) -> list[float]:
    return [2.0 * x1 + x2 + offset for x1, x2 in ROWS]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "good-1": _save(root / "good1", "ok", 0.0),
        "good-2": _save(root / "good2", "ok", 1.0),
        "broken": _save(root / "broken", "raise", 0.0),
        "slow": _save(root / "slow", "slow", 0.0),
    }


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[tuple[FakeDeps, Router]]:
    deps = make_deps(
        # Its own home: the router resumes whatever deployments the state file there lists.
        MLOPS_HOME=str(tmp_path),
        MLOPS_SMOKE_TEST_ROWS="6",
        MLOPS_LATENCY_SLO_MS="250",
        MLOPS_CANARY_PERCENT="20",
        MLOPS_CANARY_SECONDS="4",
        MLOPS_CANARY_MAX_ERROR_RATE="0.01",
    )
    router = Router(MODEL, deps.settings.home, "127.0.0.1", 0).start()
    deps.endpoints = LocalEndpoint(router.url)
    deps.clock = _RealClock()  # real seconds: bake periods and live statistics run on the wall clock
    try:
        yield deps, router
    finally:
        router.stop()


class _RealClock:
    def __call__(self):
        from datetime import UTC, datetime

        return datetime.now(UTC)

    def now(self):
        return self()

    def advance(self, seconds: float):
        raise AssertionError("this test runs on the wall clock")


def _register(deps: FakeDeps, folder: Path, offset: float) -> ModelVersion:
    run_id = f"run-{folder.name}"
    smoke = {"columns": COLUMNS, "data": ROWS, "predictions": _expected(offset)}
    deps.jobs.complete(
        run_id,
        {
            "primary_metric": "rmse",
            "greater_is_better": False,
            "challenger": {"rmse": 1.0, "r2": 0.9},
            "champion": None,
            "smoke": smoke,
        },
        model_uri=str(folder),
    )
    return deps.registry.register(
        MODEL,
        RunResults(run_id, deps.jobs.results(run_id).evaluation, str(folder)),
        {"mlops.dataset_version": "ds-test"},
    )


def _release(deps: FakeDeps, model: ModelVersion, until: tuple[str, ...], timeout: float = 60) -> str:
    on_model_registered(deps.registry.announcement(model), deps)
    rid = release_id(model.name, model.version)
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = advance(rid, deps, "reconcile")
        if status in until:
            return status
        time.sleep(0.3)
    reasons = [e.detail.get("reason") for e in deps.audit.entries() if e.action == "release.rolling_back"]
    raise AssertionError(f"release {rid} stuck in {status}; rollback reasons: {reasons}")


def _score(router: Router) -> requests.Response:
    payload = {"input_data": {"columns": COLUMNS, "index": [0], "data": [ROWS[1]]}}
    return requests.post(f"{router.url}/score", json=payload, timeout=10)


def test_a_model_whose_scoring_raises_never_receives_traffic(world: Any, models: dict[str, Path]) -> None:
    deps, _ = world
    first = _register(deps, models["good-1"], 0.0)
    assert _release(deps, first, ("production",)) == "production"
    broken = _register(deps, models["broken"], 0.0)

    assert _release(deps, broken, ("rolled_back", "production")) == "rolled_back"

    assert deps.endpoints.traffic() == {"model-v1": 100}
    assert deps.endpoints.deployment("model-v2") is None
    rolling = next(e for e in deps.audit.entries() if e.action == "release.rolling_back")
    assert "smoke test" in rolling.detail["reason"] and "cannot score" in rolling.detail["reason"]


def test_a_slow_model_fails_the_latency_slo(world: Any, models: dict[str, Path]) -> None:
    deps, _ = world
    slow = _register(deps, models["slow"], 0.0)

    assert _release(deps, slow, ("rolled_back", "production")) == "rolled_back"
    rolling = next(e for e in deps.audit.entries() if e.action == "release.rolling_back")
    assert "p95 latency" in rolling.detail["reason"]
    assert deps.endpoints.deployments() == []


def test_production_answers_correctly_at_every_moment_of_a_release(
    world: Any, models: dict[str, Path]
) -> None:
    deps, router = world
    assert _release(deps, _register(deps, models["good-1"], 0.0), ("production",)) == "production"
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def client() -> None:  # a production client that keeps scoring through the whole release
        while not stop.is_set():
            response = _score(router)
            answers.append((response.status_code, response.text.strip()))
            time.sleep(0.02)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        second = _register(deps, models["good-2"], 1.0)
        assert _release(deps, second, ("production", "rolled_back")) == "production"
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()

    assert deps.endpoints.traffic() == {"model-v1": 0, "model-v2": 100}
    valid = {f"[{_expected(0.0)[1]}]", f"[{_expected(1.0)[1]}]"}
    assert len(answers) > 20
    assert [a for a in answers if a[0] != 200 or a[1].replace(" ", "") not in valid] == []
    history = [step["status"] for step in release_state(deps, "mlops-model-v2")["history"]]
    assert "canary" in history


def test_a_canary_whose_scoring_process_dies_is_rolled_back(world: Any, models: dict[str, Path]) -> None:
    deps, router = world
    assert _release(deps, _register(deps, models["good-1"], 0.0), ("production",)) == "production"
    second = _register(deps, models["good-2"], 1.0)
    assert _release(deps, second, ("canary",)) == "canary"
    assert deps.endpoints.traffic() == {"model-v1": 80, "model-v2": 20}

    os.kill(_pid(router, "model-v2"), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while advance(release_id(MODEL, "2"), deps, "reconcile") != "rolled_back":
        assert time.monotonic() < deadline, "the dead canary was not rolled back"
        time.sleep(0.3)

    assert deps.endpoints.traffic() == {"model-v1": 100}
    assert all(_score(router).status_code == 200 for _ in range(5))
    assert production_state(deps)["version"] == "1"


def _pid(router: Router, deployment: str) -> int:
    """The deployment's scoring process, as the router's admin API reports it."""
    response = requests.get(f"{router.url}/admin/deployments/{deployment}", timeout=10)
    response.raise_for_status()
    return int(response.json()["pid"])
