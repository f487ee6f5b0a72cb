"""The example training projects (examples/), each trained end to end through the local host as a user would
configure it: CSV files land, `reconcile` starts the run, the project's command trains in its environment (built
once from its requirements file), our evaluation decides, the model is registered with its lineage, released,
and serves through the local endpoint. Real Azurite (in memory), function host, jobs, environments and scoring
processes; small bundled data sets. Timings are bench/training.py's business, not these tests'."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from shared.host.azurite import free_port
from shared.host.services import LocalServices
from shared.state import keys, releases
from shared.state.records import Run

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COMMAND = "python train.py --train {train} --model {model} --params {params}"
RUN_SECONDS = 240.0


@dataclass(frozen=True)
class Case:
    example: str
    data: str  # a scikit-learn bundled data set
    task: str
    metrics: tuple[str, ...]  # what the lineage must show


CASES = {
    "lightgbm-regression": Case("lightgbm-features", "diabetes", "regression", ("rmse", "r2")),
    "lightgbm-binary": Case("lightgbm-features", "breast_cancer", "binary", ("roc_auc", "f1")),
    "sklearn-regression": Case("sklearn-script", "diabetes", "regression", ("rmse", "r2")),
}


def bundled(name: str) -> pd.DataFrame:
    from sklearn import datasets

    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    return frame.sample(frac=1.0, random_state=11).reset_index(drop=True)


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment cache for the module (each host has its own MLOPS_HOME, whose envs/ links here)."""
    return tmp_path_factory.mktemp("envs")


@pytest.fixture(scope="module", params=list(CASES))
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, envs: Path) -> Iterator:
    case = CASES[request.param]
    home = tmp_path_factory.mktemp("home")
    (home / "envs").symlink_to(envs, target_is_directory=True)
    env = {
        "MLOPS_HOME": str(home),
        "MLOPS_HOST_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_AZURITE_PORT": str(free_port()),
        "MLOPS_LOCAL_RETRY_SECONDS": "0.1,0.1",
        "MLOPS_MODEL_NAME": f"example-{request.param}",
        "MLOPS_QUIET_PERIOD_SECONDS": "0.2",
        "MLOPS_TASK": case.task,
        "MLOPS_TRAINING_CODE": str(EXAMPLES / case.example),
        "MLOPS_TRAINING_COMMAND": COMMAND,
        "MLOPS_TRAINING_ENVIRONMENT": "requirements.txt",
        "MLOPS_BOOTSTRAP_RESAMPLES": "200",
        "MLOPS_LATENCY_SLO_MS": "5000",  # what is tested is the columns served, on a machine busy with tests
    }
    with LocalServices(env, in_memory_storage=True, timers=False, watch_interval=0.1) as services:
        frame = bundled(case.data)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        requirements = (EXAMPLES / case.example / "requirements.txt").read_bytes()
        cached = (envs / hashlib.sha256(requirements).hexdigest()[:16]).is_dir()
        started = time.monotonic()
        services.deps.blobs.write(
            services.settings.containers.landing,
            f"{case.data}.csv",
            buffer.getvalue().encode(),
            content_type="text/csv",
        )
        decided = _reconcile_until(services, lambda: _decisions(services), RUN_SECONDS)
        seconds = time.monotonic() - started
        _reconcile_until(services, lambda: _settled(services), RUN_SECONDS)
        yield case, services, frame, decided, f"{seconds:.1f} s ({'cached' if cached else 'new'} environment)"


def _decisions(services: LocalServices) -> list[Any]:
    return [
        e
        for e in services.deps.audit.entries()
        if e.action in ("model.registered", "challenger.rejected", "run.failed")
    ]


def _settled(services: LocalServices) -> bool:
    """The registered version's release has begun and ended (a ModelRegistered that outran the run's record
    is ignored, and the tick starts the release: until then no release exists)."""
    from shared.handlers.release import active_releases
    from shared.state import keys

    began = any(True for _ in services.deps.state.list(keys.RELEASES))
    return began and not active_releases(services.deps)


def _reconcile_until(services: LocalServices, condition: Callable[[], Any], timeout: float) -> Any:
    """Fire the reconcile timer (quiet periods, runs, release steps) until `condition` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        response = requests.post(
            f"{services.server.url}/admin/functions/reconcile?wait=true", json={"input": ""}, timeout=120
        )
        assert response.status_code == 200, response.text
        time.sleep(0.3)
    raise AssertionError(
        f"not reached in {timeout:.0f} s; audit: {[e.action for e in services.deps.audit.entries()]}"
    )


def _runs(services: LocalServices) -> list[Run]:
    return [stored.record for stored in services.deps.state.list(keys.RUNS)]


def test_the_example_trains_through_the_host_and_our_evaluation_registers_it(trained) -> None:
    case, services, frame, decided, took = trained
    [decision] = decided
    assert decision.action == "model.registered", decision.detail
    [run] = _runs(services)
    assert run.evaluation is not None and run.evaluation["code"]["built_in"] is False
    assert run.evaluation["estimator"] is None  # not the built-in's MLOPS_ESTIMATOR
    rows = run.evaluation["rows"]
    assert rows["train"] + rows["holdout"] == len(frame)

    name, version = decision.subject.split(":")
    lineage = requests.get(
        f"{services.server.url}/api/models/{name}/{version}/lineage",
        headers={"x-functions-key": services.settings.local.function_key},
        timeout=30,
    ).json()

    requirements = EXAMPLES / case.example / "requirements.txt"
    code = lineage["code"]
    assert code["built_in"] is False and code["environment"] == "requirements.txt"
    assert code["environment_sha256"] == hashlib.sha256(requirements.read_bytes()).hexdigest()
    assert lineage["code_version"] in (code["git_commit"], f"sha256:{code['sources_sha256']}")
    assert len(lineage["model_sha256"]) == 64
    assert set(case.metrics) <= set(lineage["metrics"])
    scores = ", ".join(f"{m}={lineage['metrics'][m]:.3f}" for m in case.metrics)
    print(f"\n{case.example} on {case.data} ({case.task}): {scores}; run {took}")
    if case.task == "regression":
        assert lineage["metrics"]["r2"] > 0.2  # diabetes: a linear model reaches ~0.45
    else:
        assert lineage["metrics"]["roc_auc"] > 0.95  # breast cancer: well separated


def test_the_registered_model_serves_the_raw_columns_through_the_local_endpoint(trained) -> None:
    case, services, frame, decided, _ = trained
    production = releases.production(services.deps.state, services.settings.model_name)
    assert production is not None and f"{production.model}:{production.version}" == decided[0].subject
    rows = frame.drop(columns=["target"]).head(5)
    payload = {
        "input_data": {"columns": list(rows.columns), "index": list(range(5)), "data": rows.values.tolist()}
    }

    response = requests.post(f"{services.router.url}/score", json=payload, timeout=60)

    assert response.status_code == 200, response.text
    answers = response.json()
    assert len(answers) == 5
    if case.task == "regression":
        assert all(isinstance(a, float) for a in answers)
    else:  # class labels, as the data has them, not probabilities
        assert set(answers) <= set(frame["target"].unique().tolist())
        assert all(isinstance(a, int) for a in answers)
